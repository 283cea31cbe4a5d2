//! create-service on PostgreSQL next to sled, one node each, in one run: callbackd with its
//! default engine (sled, `sync = "device"`) and with `[store] engine = "postgres"` on a
//! throwaway cluster started by the benchmark with PostgreSQL's durable defaults (`fsync` on,
//! `synchronous_commit` on), driven by the same wrk runs one after the other at 1, 16 and 64
//! connections, after `sync`, the order rotating per row. Both acknowledge only durable writes:
//! sled after its group commit's `fdatasync`, PostgreSQL after its COMMIT's WAL flush. The
//! PostgreSQL server runs on the same two cores as callbackd and wrk.

use std::net::SocketAddr;

use callbackd::store::postgres::throwaway::{Cluster, Durability};
use callbackd::store::EngineKind;

use super::{ms, settle, start_callbackd_keeping_store, write_script, wrk, Run};

pub fn table(seconds: u64) {
    let cluster = Cluster::start(Durability::Device).expect("a throwaway PostgreSQL starts");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sled_dir = tempfile::tempdir().expect("temp dir");
    let pg_dir = tempfile::tempdir().expect("temp dir");
    let sled = runtime.block_on(start_callbackd_keeping_store(sled_dir.path(), |_| {}));
    let url = cluster.fresh_database();
    let pg = runtime.block_on(start_callbackd_keeping_store(pg_dir.path(), |c| {
        c.store.engine = EngineKind::Postgres;
        c.store.url = Some(url);
    }));

    println!(
        "create-service on one node, sled (sync = \"device\") next to PostgreSQL (fsync and \
         synchronous_commit on, same machine), {seconds} s of wrk per cell; commits/s: \
         PostgreSQL transactions committed per second"
    );
    println!();
    println!("| clients | sled creates/s | sled p50 | sled p99 | pg creates/s | pg p50 | pg p99 | pg commits/s | pg / sled |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let script = write_script();
    let create = |addr: SocketAddr| format!("http://{addr}/genesys/1/service/callback/chat-delay");
    let targets = [create(sled.addr), create(pg.addr)];
    for (cell, clients) in [1u32, 16, 64].into_iter().enumerate() {
        for target in &targets {
            wrk(target, &script, clients, 1);
        }
        let mut runs: [Option<(Run, f64)>; 2] = [None, None];
        for k in 0..targets.len() {
            let i = (k + cell) % targets.len();
            settle();
            let before = pg.store.sync_counts().0;
            let started = std::time::Instant::now();
            let run = wrk(&targets[i], &script, clients, seconds);
            let commits =
                (pg.store.sync_counts().0 - before) as f64 / started.elapsed().as_secs_f64();
            runs[i] = Some((run, commits));
        }
        let [Some((on_sled, _)), Some((on_pg, pg_commits))] = runs else {
            unreachable!("both ran")
        };
        println!(
            "| {clients} | {:.0} | {} | {} | {:.0} | {} | {} | {pg_commits:.0} | {:.2} |",
            on_sled.rps,
            ms(on_sled.p50),
            ms(on_sled.p99),
            on_pg.rps,
            ms(on_pg.p50),
            ms(on_pg.p99),
            on_pg.rps / on_sled.rps
        );
        for (name, run) in [("sled", &on_sled), ("pg", &on_pg)] {
            if run.errors > 0 {
                println!(
                    "  ! {name} at {clients} clients: {} non-2xx or socket errors",
                    run.errors
                );
            }
        }
    }
    runtime.block_on(async {
        sled.stop().await;
        pg.stop().await;
    });
}
