//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` and `postgres` from the
//! system's binaries, in a temporary directory, on a free loopback port, stopped when its
//! owner drops it or when the process that started it dies (the server gets its parent's
//! death as a signal, so a killed test run leaves no server behind).
//!
//! The binaries are found in `$CALLBACKD_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `pg_config --bindir`. Run as root,
//! the cluster belongs to the `postgres` user, since PostgreSQL refuses to run as root.
//! `$CALLBACKD_TEST_POSTGRES_URL` points the tests at a server of one's own instead (its user
//! must be allowed to create databases).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::pool::{wait, Pool};

/// One PostgreSQL server and the databases made on it.
#[derive(Debug)]
pub struct Cluster {
    /// `postgres://user@host:port`, without a database.
    base_url: String,
    /// The server started, when this cluster started one.
    server: Option<Server>,
    /// A connection to the `postgres` database, for `CREATE DATABASE`.
    admin: Mutex<Pool>,
}

#[derive(Debug)]
struct Server {
    /// `None` while stopped ([`Cluster::stop`]).
    child: Option<Child>,
    dir: PathBuf,
    /// Everything needed to start it again on the same directory and port.
    launch: Launch,
}

#[derive(Debug)]
struct Launch {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    durability: Durability,
    owner: Option<(u32, u32)>,
}

impl Launch {
    /// Starts the server process (its readiness is waited for by connecting).
    fn spawn(&self, socket_dir: &Path) -> Result<Child, String> {
        let mut postgres = Command::new(self.bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(socket_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=400",
            ])
            .args(["-c", "shared_buffers=32MB", "-c", "log_min_messages=fatal"]);
        if self.durability == Durability::Tests {
            postgres.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        postgres
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run_as(&mut postgres, self.owner);
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut postgres, || {
                rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::INT))
                    .map_err(std::io::Error::from)
            });
        }
        spawn_from_lasting_thread(postgres)
            .map_err(|e| format!("{}: {e}", self.bin.join("postgres").display()))
    }
}

/// How the started server treats durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` off: the tests' setting, since they kill callbackd, not the database.
    Tests,
    /// PostgreSQL's defaults (`fsync` on): for benchmarks that compare durable work.
    Device,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static DATABASES: AtomicU64 = AtomicU64::new(0);

/// The process's cluster for tests, started on first use (or `$CALLBACKD_TEST_POSTGRES_URL`).
///
/// # Panics
/// The cluster cannot be started: the message says why (binaries missing, initdb failed).
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(|| {
        let started = match std::env::var("CALLBACKD_TEST_POSTGRES_URL") {
            Ok(url) => Cluster::existing(&url),
            Err(_) => Cluster::start(Durability::Tests),
        };
        started.unwrap_or_else(|err| panic!("cannot start a throwaway PostgreSQL: {err}"))
    })
}

impl Cluster {
    /// Starts a new server in a temporary directory.
    ///
    /// # Errors
    /// The binaries are missing, or initdb or the server failed (their output is in the
    /// message).
    pub fn start(durability: Durability) -> Result<Cluster, String> {
        let bin = binaries()?;
        remove_stale_directories();
        let dir = std::env::temp_dir().join(format!(
            "callbackd-pg-{}-{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let owner = cluster_owner()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "callbackd", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .args(["--locale", "C"]);
        run_as(&mut initdb, owner);
        let output = initdb
            .output()
            .map_err(|e| format!("{}: {e}", bin.join("initdb").display()))?;
        if !output.status.success() {
            return Err(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }

        let launch = Launch {
            bin,
            data,
            port: free_port()?,
            durability,
            owner,
        };
        let port = launch.port;
        let server = Server {
            child: Some(launch.spawn(&dir)?),
            dir: dir.clone(),
            launch,
        };
        let base_url = format!("postgres://callbackd@127.0.0.1:{port}");
        let admin = connect_until(&format!("{base_url}/postgres"), Duration::from_secs(30))?;
        Ok(Cluster {
            base_url,
            server: Some(server),
            admin: Mutex::new(admin),
        })
    }

    /// A cluster already running at `url` (a server and a user that may create databases).
    ///
    /// # Errors
    /// It cannot be reached.
    pub fn existing(url: &str) -> Result<Cluster, String> {
        let base_url = url.trim_end_matches('/').to_string();
        let admin = Pool::open(&format!("{base_url}/postgres"), 1).map_err(|e| e.to_string())?;
        Ok(Cluster {
            base_url,
            server: None,
            admin: Mutex::new(admin),
        })
    }

    /// A new empty database on this cluster; its URL.
    ///
    /// # Panics
    /// `CREATE DATABASE` failed.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "callbackd_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let conn = admin
            .get()
            .expect("the throwaway cluster's admin connection");
        wait(conn.batch_execute(&format!("CREATE DATABASE {name}")))
            .unwrap_or_else(|err| panic!("CREATE DATABASE {name}: {err}"));
        format!("{}/{name}", self.base_url)
    }

    /// Stops the server (a fast shutdown: sessions are ended), as a database outage would;
    /// [`Cluster::restart`] starts it again. Does nothing on a cluster this did not start.
    pub fn stop(&mut self) {
        if let Some(server) = &mut self.server {
            if let Some(mut child) = server.child.take() {
                stop(&mut child);
            }
        }
    }

    /// Starts the stopped server again on the same directory and port, and waits until it
    /// answers.
    ///
    /// # Errors
    /// It did not start.
    pub fn restart(&mut self) -> Result<(), String> {
        if let Some(server) = &mut self.server {
            if server.child.is_none() {
                server.child = Some(server.launch.spawn(&server.dir)?);
                connect_until(
                    &format!("{}/postgres", self.base_url),
                    Duration::from_secs(30),
                )?;
            }
        }
        Ok(())
    }

    /// The server's address, `postgres://user@host:port` (no database).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            if let Some(mut child) = server.child.take() {
                stop(&mut child);
            }
            let _ = std::fs::remove_dir_all(&server.dir);
        }
    }
}

/// Asks the server for a fast shutdown and waits for it to exit.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Spawns `command` from a thread that lives as long as the process: the parent-death signal
/// follows the thread that spawned the child, and a test's thread ends with its test.
fn spawn_from_lasting_thread(mut command: Command) -> std::io::Result<Child> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("throwaway-postgres".into())
        .spawn(move || {
            let _ = tx.send(command.spawn());
            loop {
                std::thread::park();
            }
        })?;
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread died")))
}

/// Where `initdb` and `postgres` are.
fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("CALLBACKD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let debian = Path::new("/usr/lib/postgresql");
    if let Ok(entries) = std::fs::read_dir(debian) {
        let newest = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|version| debian.join(version.to_string()).join("bin/initdb").exists())
            .max();
        if let Some(version) = newest {
            return Ok(debian.join(version.to_string()).join("bin"));
        }
    }
    let output = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|_| {
            "PostgreSQL's binaries are missing: apt-get install -y postgresql (or set CALLBACKD_PG_BIN)"
                .to_string()
        })?;
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// The `postgres` user's uid and gid when running as root, else `None` (run as oneself).
fn cluster_owner() -> Result<Option<(u32, u32)>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                "running as root, and there is no `postgres` user to run PostgreSQL as".to_string()
            })
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

fn run_as(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::process::CommandExt::uid(command, uid);
        std::os::unix::process::CommandExt::gid(command, gid);
        // The postgres user cannot enter root's working directory.
        command.current_dir("/");
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Connects to `url`, retrying while the server starts, until `patience` has passed.
fn connect_until(url: &str, patience: Duration) -> Result<Pool, String> {
    let deadline = Instant::now() + patience;
    loop {
        match Pool::open(url, 1) {
            Ok(pool) => return Ok(pool),
            Err(err) if Instant::now() >= deadline => {
                return Err(format!(
                    "the throwaway server did not answer at {url}: {err}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Removes the directories of throwaway clusters whose process is gone.
fn remove_stale_directories() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("callbackd-pg-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next() else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
