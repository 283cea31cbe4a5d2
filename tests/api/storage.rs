//! The real binary and its disk: acknowledged writes are on the device, and a full disk is a
//! 503 that ends by itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{eventually, ServerProcess, ADMIN_TOKEN, GMS_USER};

/// These tests are about sled's own disk (its syncs, its full filesystem): their servers run
/// on sled whichever engine the rest of the suite runs on.
const SLED: (&str, &str) = ("CALLBACKD_STORE_ENGINE", "sled");

/// Writes a config file with `[store]` set to `store` into `dir`; returns the env that names it.
fn store_config(dir: &Path, store: &str) -> PathBuf {
    let file = dir.join("callbackd.toml");
    std::fs::write(&file, format!("[store]\n{store}\n")).unwrap();
    file
}

/// Creates a chat-delay service; returns the status, the body, and the id when 200.
async fn create(client: &reqwest::Client, address: &str, n: usize) -> (u16, String) {
    let response = client
        .post(format!("{address}/genesys/1/service/callback/chat-delay"))
        .header("gms_user", GMS_USER)
        .form(&[("_customer_number", format!("{n:08}"))])
        .send()
        .await
        .expect("create sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn id_of(body: &str) -> String {
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    body["_id"].as_str().expect("_id").to_string()
}

async fn read_status(client: &reqwest::Client, address: &str, id: &str) -> u16 {
    client
        .get(format!("{address}/genesys/1/admin/callback/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("query sent")
        .status()
        .as_u16()
}

/// `fdatasync` calls the server makes while `creates` services are created one after the
/// other, counted by strace attached to every thread of the process.
async fn fdatasyncs_during_creates(sync: &str, creates: usize) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let config = store_config(dir.path(), &format!("sync = \"{sync}\""));
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        &data,
        &[("CALLBACKD_CONFIG", config.to_str().unwrap()), SLED],
    );
    let client = reqwest::Client::new();
    // One create first, so start-up's own syncs are over.
    let (status, _) = create(&client, &server.address, 0).await;
    assert_eq!(status, 200);

    let trace = dir.path().join("strace.out");
    let mut strace = match Command::new("strace")
        .args(["-f", "-e", "trace=fdatasync", "-o"])
        .arg(&trace)
        .args(["-p", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => panic!("strace cannot start: {err}"),
    };
    // strace says on stderr once it is attached to the threads.
    let stderr = strace.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let attached = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("strace attaches");
    assert!(attached.contains("attached"), "strace: {attached}");

    for n in 1..=creates {
        let (status, body) = create(&client, &server.address, n).await;
        assert_eq!(status, 200, "create {n}: {body}");
    }

    // SIGINT: strace detaches, writes out what it saw and exits.
    let interrupted = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    Some(
        text.lines()
            .filter(|line| line.contains("fdatasync(") && line.contains("= 0"))
            .count(),
    )
}

#[tokio::test]
async fn every_acknowledged_create_is_fdatasynced_with_device_sync_and_not_with_os_sync() {
    const CREATES: usize = 20;
    let Some(device) = fdatasyncs_during_creates("device", CREATES).await else {
        println!(
            "SKIPPED every_acknowledged_create_is_fdatasynced...: strace is not installed \
             (apt-get install -y strace, or run scripts/test, which installs it)"
        );
        return;
    };
    let os = fdatasyncs_during_creates("os", CREATES)
        .await
        .expect("strace ran once");

    println!(
        "fdatasync per acknowledged create: device {:.2}, os {:.2}",
        device as f64 / CREATES as f64,
        os as f64 / CREATES as f64
    );
    // Creates one at a time: each is its own group commit, so each waited for at least one
    // flush and its fdatasync (the router's own durable writes may add some).
    assert!(
        device >= CREATES,
        "{device} fdatasync calls for {CREATES} acknowledged creates with sync = \"device\""
    );
    assert_eq!(
        os, 0,
        "sync = \"os\" leaves durability to sled's sync_file_range"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
struct Mount {
    path: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs of `size` (`96m`) at `path`; `None` where mounting is not allowed.
    fn tmpfs(path: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Mount {
            path: path.to_path_buf(),
        })
    }

    /// Bytes free on it.
    fn free(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the free bytes")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A file of `bytes` zeros at `path` (tmpfs: written pages are taken at once), or as many as
/// fit: the server may take some of the space measured before the ballast is written, and a
/// full disk is what the ballast is for.
fn ballast(path: &Path, bytes: u64) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        match file.write_all(&chunk[..n]) {
            Ok(()) => left -= n as u64,
            Err(err) if err.kind() == std::io::ErrorKind::StorageFull => return,
            Err(err) => panic!("ballast {}: {err}", path.display()),
        }
    }
}

/// 16 clients each creating `each` services; returns the ids acknowledged and the bodies of
/// every answer that was not 200, with their status.
async fn sixteen_writers(address: &str, each: usize) -> (Vec<String>, Vec<(u16, String)>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (address, acknowledged, refused) =
            (address.to_string(), acknowledged.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0..each {
                let (status, body) = create(&client, &address, worker * 10_000 + n).await;
                if status == 200 {
                    acknowledged.lock().unwrap().push(id_of(&body));
                } else {
                    refused.lock().unwrap().push((status, body));
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    (acknowledged, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_refuses_creates_with_503_keeps_reads_and_resumes_by_itself() {
    // Arrange: the data directory on a 96 MiB tmpfs, writes refused below 32 MiB free.
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("disk"), "96m") else {
        println!(
            "SKIPPED a_nearly_full_disk...: cannot mount a tmpfs here (needs root); the \
             injected-probe test store::tests::a_nearly_full_disk_refuses_new_data_... covers it"
        );
        return;
    };
    let config = store_config(dir.path(), "min_free_bytes = 33554432");
    let env = [("CALLBACKD_CONFIG", config.to_str().unwrap()), SLED];
    let data = mount.path.join("data");
    let server = ServerProcess::start(&data, &env);
    let client = reqwest::Client::new();
    let (mut acknowledged, refused) = sixteen_writers(&server.address, 5).await;
    assert!(refused.is_empty(), "room: all created: {refused:?}");

    // Act: fill the disk to 16 MiB free, under the floor.
    let ballast_file = mount.path.join("ballast");
    ballast(&ballast_file, mount.free() - 16 * 1024 * 1024);
    let (during, refused) = sixteen_writers(&server.address, 10).await;
    acknowledged.extend(during);

    // Assert: refused with 503 and a message, never 500; reads go on.
    assert!(!refused.is_empty(), "a nearly full disk refuses creates");
    for (status, body) in &refused {
        assert_eq!(*status, 503, "{body}");
        assert!(body.contains("disk is nearly full"), "{body}");
    }
    for id in &acknowledged {
        assert_eq!(read_status(&client, &server.address, id).await, 200, "{id}");
    }

    // Space returns: creates go through again, without a restart.
    std::fs::remove_file(&ballast_file).unwrap();
    let address = server.address.clone();
    let id = eventually(Duration::from_secs(10), "creates accepted again", || {
        let (client, address) = (client.clone(), address.clone());
        async move {
            let (status, body) = create(&client, &address, 999_999).await;
            assert!(status == 200 || status == 503, "{status}: {body}");
            (status == 200).then(|| id_of(&body))
        }
    })
    .await;
    acknowledged.push(id);
    let (after, refused) = sixteen_writers(&server.address, 5).await;
    assert!(refused.is_empty(), "all created again: {refused:?}");
    acknowledged.extend(after);

    // Nothing acknowledged is lost across a restart.
    server.kill9();
    let restarted = ServerProcess::start(&data, &env);
    for id in &acknowledged {
        assert_eq!(
            read_status(&client, &restarted.address, id).await,
            200,
            "acknowledged {id} after restart"
        );
    }
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_floor_off_a_full_disk_is_503_and_sled_writes_again_only_after_a_restart() {
    // Arrange: a 48 MiB tmpfs and no free-space floor, so sled itself meets ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(&dir.path().join("disk"), "48m") else {
        println!("SKIPPED with_the_floor_off...: cannot mount a tmpfs here (needs root)");
        return;
    };
    let config = store_config(dir.path(), "min_free_bytes = 0");
    let env = [("CALLBACKD_CONFIG", config.to_str().unwrap()), SLED];
    let data = mount.path.join("data");
    let server = ServerProcess::start(&data, &env);
    let client = reqwest::Client::new();
    let (acknowledged, refused) = sixteen_writers(&server.address, 2).await;
    assert!(refused.is_empty(), "{refused:?}");

    // Act: fill the disk completely.
    let ballast_file = mount.path.join("ballast");
    ballast(&ballast_file, mount.free());
    let (during, refused) = sixteen_writers(&server.address, 10).await;

    // Assert: 503, never 500. A read of what was acknowledged answers too, never a 500; it
    // may be a 503, since a sled read can consolidate a page, which is a write, and sled
    // refuses every write once one has failed (nothing is lost: see after the restart).
    assert!(!refused.is_empty(), "a full disk fails writes");
    for (status, body) in &refused {
        assert_eq!(*status, 503, "{body}");
    }
    let read = read_status(&client, &server.address, &acknowledged[0]).await;
    assert!(
        matches!(read, 200 | 503),
        "a read on a full disk answered {read}"
    );
    // sled 0.34.7 keeps its first write error until the database is opened again: freeing
    // space does not bring writes back in this process (this pins that known behaviour).
    std::fs::remove_file(&ballast_file).unwrap();
    let (status, body) = create(&client, &server.address, 1).await;
    assert_eq!(status, 503, "still refused after space was freed: {body}");

    // A restart clears it, and nothing acknowledged is lost.
    server.kill9();
    let restarted = ServerProcess::start(&data, &env);
    let (status, body) = create(&client, &restarted.address, 2).await;
    assert_eq!(status, 200, "{body}");
    for id in acknowledged.iter().chain(&during) {
        assert_eq!(
            read_status(&client, &restarted.address, id).await,
            200,
            "acknowledged {id} after restart"
        );
    }
    drop(restarted);
}
