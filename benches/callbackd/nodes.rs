//! nodes: create-service through one, two and three callbackd nodes over one PostgreSQL
//! database, in one run. The nodes run in this process on the same two cores as PostgreSQL and
//! wrk; the first holds the lease, the others follow and relay to it. For each row the wrk
//! connections are split evenly over the nodes in use, one wrk per node, all at once: on one box
//! this measures what a relay hop costs, not a speed-up (every create is still routed and
//! committed by the active node).

use callbackd::config::Config;
use callbackd::store::postgres::throwaway::{Cluster, Durability};
use callbackd::store::EngineKind;
use callbackd::App;
use tokio::sync::oneshot;

use super::{bench_config, ms, settle, start_callbackd_keeping_store, write_script, wrk, Run};

/// A follower started in this process: its address, and how to stop it.
struct Follower {
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a node on `dir` over `url`; another node holds the lease, so it follows.
async fn start_follower(dir: &std::path::Path, url: &str) -> Follower {
    let mut config: Config = bench_config(dir);
    config.store.engine = EngineKind::Postgres;
    config.store.url = Some(url.to_string());
    let app = App::build(config).await.expect("callbackd builds");
    assert!(
        app.state().is_none(),
        "the second node over a database follows"
    );
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = stopped.await;
            })
            .await;
    });
    Follower { addr, stop, task }
}

pub fn table(seconds: u64) {
    let cluster = Cluster::start(Durability::Device).expect("a throwaway PostgreSQL starts");
    let url = cluster.fresh_database();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let active = runtime.block_on(start_callbackd_keeping_store(dirs[0].path(), |c| {
        c.store.engine = EngineKind::Postgres;
        c.store.url = Some(url.clone());
    }));
    let followers: Vec<Follower> = dirs[1..]
        .iter()
        .map(|dir| runtime.block_on(start_follower(dir.path(), &url)))
        .collect();
    let create =
        |addr: std::net::SocketAddr| format!("http://{addr}/genesys/1/service/callback/chat-delay");
    let targets: Vec<String> = std::iter::once(active.addr)
        .chain(followers.iter().map(|f| f.addr))
        .map(create)
        .collect();

    println!(
        "create-service through 1, 2 and 3 nodes over one PostgreSQL database (fsync and \
         synchronous_commit on, same machine), {seconds} s of wrk per cell, the connections \
         split evenly over the nodes; the first node is the active one, the others relay to it"
    );
    println!();
    println!("| nodes | clients | creates/s | worst p50 | worst p99 | / 1 node |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let script = write_script();
    for clients in [16u32, 64] {
        let mut one_node = None;
        for nodes in 1..=targets.len() {
            for target in &targets[..nodes] {
                wrk(target, &script, 2, 1);
            }
            settle();
            let share = clients / nodes as u32;
            let runs: Vec<Run> = std::thread::scope(|scope| {
                let running: Vec<_> = targets[..nodes]
                    .iter()
                    .map(|target| {
                        let script = &script;
                        scope.spawn(move || wrk(target, script, share, seconds))
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|run| run.join().expect("wrk ran"))
                    .collect()
            });
            let rps: f64 = runs.iter().map(|run| run.rps).sum();
            let p50 = runs.iter().map(|run| run.p50).max().expect("a run");
            let p99 = runs.iter().map(|run| run.p99).max().expect("a run");
            let base = *one_node.get_or_insert(rps);
            println!(
                "| {nodes} | {} | {rps:.0} | {} | {} | {:.2} |",
                share * nodes as u32,
                ms(p50),
                ms(p99),
                rps / base
            );
            let errors: u64 = runs.iter().map(|run| run.errors).sum();
            if errors > 0 {
                println!(
                    "  ! {nodes} nodes at {clients} clients: {errors} non-2xx or socket errors"
                );
            }
        }
    }
    runtime.block_on(async {
        for follower in followers {
            let _ = follower.stop.send(());
            let _ = follower.task.await;
        }
        active.stop().await;
    });
}
