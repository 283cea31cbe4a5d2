//! chat: many poll-mode chats at once over HTTP, against one callbackd in this process.
//!
//! Setup (not timed): agents in group `Bench` with room for every chat (20 chats each,
//! `auto_answer`), a `Chat-Immediate` service `bench-chat` targeting them, and per chat a
//! service created as its own `gms_user`, its chat started (`ixn/chat`) and waited for until
//! the customer's refresh shows the agent's `Notice.Joined`.
//!
//! Timed: every conversation runs at once in its own task, over one shared HTTP client. The
//! sides take turns: the customer sends with `ixn/chat/refresh` + `message`, the agent with
//! `POST /genesys/1/agent/{agent}/chat/{id}/message`. While one side sends, the other polls
//! (the customer with `refresh`, the agent with `GET .../chat/{id}?transcriptPosition=N`),
//! starting with the send and pausing [`POLL_INTERVAL`] between polls, until a reply holds the
//! message. A message's latency runs from the start of its send request to the end of the
//! first poll reply that holds it; the next message starts once both the send and that poll
//! have answered.
//!
//! Nothing here is retried: every non-2xx reply, transport error or message not seen within
//! [`MESSAGE_DEADLINE`] is an error, printed, and ends its conversation.
//!
//! Both runs are CPU-bound here, so the table also gives the process's CPU time per message
//! (user and system, from `/proc/self/stat`, the benchmark's own client included): steadier
//! than messages/s on a shared machine, and it says what a message costs, not only how long
//! it waited.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64 as Counter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use reqwest::{Client, Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use warp::Filter;

use super::{ms, percentile, settle, start_callbackd_keeping_store, BareCommitter, ADMIN_TOKEN};

/// Chats each agent holds at once.
const AGENT_CAPACITY: usize = 20;
/// The pause between two polls of the side waiting for a message.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// A message not seen by the other side by then is an error.
const MESSAGE_DEADLINE: Duration = Duration::from_secs(30);
/// Setup requests in flight at once (creating services, starting chats).
const SETUP_CONCURRENCY: usize = 64;
/// Error replies printed in full; the others are only counted.
const ERRORS_SHOWN: usize = 10;

/// Runs `chats` conversations of `messages` messages each, against the bare endpoint and
/// then against callbackd, and prints them side by side.
pub fn chat_table(chats: usize, messages: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let bare_dir = tempfile::tempdir().expect("temp dir");
    let started = runtime.block_on(start_callbackd_keeping_store(dir.path(), |_| {}));
    let bare = runtime.block_on(start_bare_chat(bare_dir.path(), chats));
    let api = Api::new(started.addr);
    let bare_api = Api::new(bare.addr);
    let agents = chats.div_ceil(AGENT_CAPACITY);

    let setup_started = Instant::now();
    let sessions = runtime.block_on(setup(&api, chats, agents));
    let setup = setup_started.elapsed();

    settle();
    let before = bare.committer.counts();
    let (bare_run, bare_cpu) =
        with_cpu(|| runtime.block_on(converse(&bare_api, bare_sessions(chats), messages)));
    let bare_writes = bare.committer.counts().per_flush_since(before);

    settle();
    let stats = started.store.commit_stats();
    let counts = || {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (load(&stats.waiters), load(&stats.flushes))
    };
    let before = counts();
    let (run, cpu) = with_cpu(|| runtime.block_on(converse(&api, sessions, messages)));
    let after = counts();
    let flushes = after.1 - before.1;
    let writes = (after.0 - before.0) as f64 / flushes.max(1) as f64;
    let _ = started.stop.send(());
    let _ = bare.stop.send(());

    println!(
        "chat, poll mode over HTTP: {chats} concurrent chats x {messages} messages \
         (customer `refresh` with `message` / agent `message`, taking turns), {agents} agents \
         x {AGENT_CAPACITY} chats; the waiting side polls every {} ms. bare: warp + sled, the \
         same requests, each send appends one transcript row and group-commits (flush + \
         fdatasync, as callbackd's default `sync = \"device\"`); polls read memory",
        POLL_INTERVAL.as_millis()
    );
    println!();
    println!("| server | chats | messages | wall | messages/s | p50 | p99 | max | requests/s | writes/flush | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    bare_run.print_row("bare", chats, bare_writes, &bare_api);
    run.print_row("callbackd", chats, writes, &api);
    println!(
        "  callbackd / bare: {:.2} of the messages/s, p99 {:.2}x",
        run.rate() / bare_run.rate().max(f64::MIN_POSITIVE),
        run.p(0.99).as_secs_f64() / bare_run.p(0.99).as_secs_f64().max(f64::MIN_POSITIVE)
    );
    println!(
        "  process CPU per message (user + system; the server and this benchmark's client, \
         the same client in both runs): bare {:.2} ms, callbackd {:.2} ms ({:.2}x)",
        bare_run.cpu_per_message(bare_cpu),
        run.cpu_per_message(cpu),
        run.cpu_per_message(cpu) / bare_run.cpu_per_message(bare_cpu).max(f64::MIN_POSITIVE)
    );
    println!(
        "  latency: send request start -> first poll reply holding the message; callbackd: {} \
         requests in the timed phase ({} polls, {:.2} per message), {flushes} flushes; setup \
         {:.1} s",
        run.requests,
        run.polls,
        run.polls as f64 / run.latencies.len().max(1) as f64,
        setup.as_secs_f64()
    );
    bare_api.errors.print();
    api.errors.print();
}

/// One started chat, its agent joined.
struct Session {
    /// Which chat (0-based), for the message texts.
    n: usize,
    /// The service id.
    service: String,
    /// The customer's `gms_user`.
    user: String,
    /// The agent the chat was routed to.
    agent: String,
    /// The transcript position the agent reads from next.
    agent_position: u64,
}

/// What the timed phase measured.
struct Conversations {
    /// Every delivered message's latency, sorted.
    latencies: Vec<Duration>,
    /// From the first conversation's start to the last one's end.
    wall: Duration,
    /// Requests sent in the timed phase, polls included.
    requests: u64,
    /// Of those, polls.
    polls: u64,
}

impl Conversations {
    /// Messages delivered per second.
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64()
    }

    /// Milliseconds of CPU per delivered message, from `ticks` (1/100 s) used by the run.
    fn cpu_per_message(&self, ticks: u64) -> f64 {
        ticks as f64 * 10.0 / self.latencies.len().max(1) as f64
    }

    /// The `p` percentile latency (zero without any).
    fn p(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        percentile(&self.latencies, p)
    }

    fn print_row(&self, server: &str, chats: usize, writes_per_flush: f64, api: &Api) {
        let max = self.latencies.last().copied().unwrap_or_default();
        println!(
            "| {server} | {chats} | {} | {:.2} s | {:.0} | {} | {} | {} | {:.0} | {writes_per_flush:.1} | {} |",
            self.latencies.len(),
            self.wall.as_secs_f64(),
            self.rate(),
            ms(self.p(0.50)),
            ms(self.p(0.99)),
            ms(max),
            self.requests as f64 / self.wall.as_secs_f64(),
            api.errors.count(),
        );
    }
}

/// `run`'s result, and the CPU ticks (1/100 s) this process used while it ran.
fn with_cpu<T>(run: impl FnOnce() -> T) -> (T, u64) {
    let before = super::cpu_ticks("self");
    let result = run();
    (result, super::cpu_ticks("self").saturating_sub(before))
}

/// The agents, the service, and every chat started with its agent joined.
async fn setup(api: &Api, chats: usize, agents: usize) -> Vec<Session> {
    api.admin(Method::PUT, "/genesys/1/admin/services/bench-chat")
        .send_json(
            api,
            json!({"preset": "Chat-Immediate", "options": {"_target": "Bench@StatServer.GA"}}),
        )
        .await
        .expect("bench-chat configured");
    for a in 0..agents {
        let id = agent_id(a);
        api.admin(Method::PUT, &format!("/genesys/1/admin/agents/{id}"))
            .send_json(
                api,
                json!({
                    "name": format!("Bench Agent {a}"),
                    "groups": ["Bench"],
                    "capacity": {"chat": AGENT_CAPACITY},
                    "auto_answer": true,
                }),
            )
            .await
            .expect("agent configured");
        api.admin(Method::POST, &format!("/genesys/1/agent/{id}/state"))
            .send_json(api, json!({"state": "ready"}))
            .await
            .expect("agent ready");
    }
    let started: Vec<Result<Session, String>> = stream::iter(0..chats)
        .map(|n| start_chat(api, n))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let sessions: Vec<Session> = started.into_iter().filter_map(Result::ok).collect();
    assert_eq!(
        sessions.len(),
        chats,
        "every chat starts and is joined by its agent (errors above)"
    );
    sessions
}

/// Creates chat `n`'s service, starts its chat and waits for its agent to join.
async fn start_chat(api: &Api, n: usize) -> Result<Session, String> {
    let user = format!("bench-customer-{n:05}");
    let number = format!("{}", 4_080_000_000u64 + n as u64);
    let created = api
        .customer("/genesys/1/service/callback/bench-chat", &user)
        .send_form(api, &[("_customer_number", number.as_str())])
        .await?;
    let service = created["_id"].as_str().ok_or("no _id")?.to_string();
    let chat = format!("/genesys/1/service/{service}/ixn/chat");
    api.customer(&chat, &user)
        .send_form(api, &[("firstName", "Bench"), ("lastName", &n.to_string())])
        .await?;
    let refresh = format!("{chat}/refresh");
    let deadline = Instant::now() + MESSAGE_DEADLINE;
    loop {
        let reply = api.customer(&refresh, &user).send_form(api, &[]).await?;
        if customer_rows(&reply).any(|row| row[0] == "Notice.Joined") {
            break;
        }
        if Instant::now() > deadline {
            return Err(api
                .errors
                .record(format!("chat {service}: no agent joined")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let detail = api
        .admin(Method::GET, &format!("/genesys/1/admin/callback/{service}"))
        .send_empty(api)
        .await?;
    let agent = detail["_reserved_agent"]
        .as_str()
        .ok_or_else(|| {
            api.errors
                .record(format!("{service} has no agent: {detail}"))
        })?
        .to_string();
    let view = api
        .admin(
            Method::GET,
            &format!("/genesys/1/agent/{agent}/chat/{service}"),
        )
        .send_empty(api)
        .await?;
    let agent_position = view["transcriptPosition"].as_u64().unwrap_or(1);
    Ok(Session {
        n,
        service,
        user,
        agent,
        agent_position,
    })
}

/// Runs every conversation at once; returns when all have ended.
async fn converse(api: &Api, sessions: Vec<Session>, messages: usize) -> Conversations {
    let requests_before = api.requests.load(Ordering::Relaxed);
    let polls_before = api.polls.load(Ordering::Relaxed);
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            let api = api.clone();
            tokio::spawn(async move { conversation(&api, session, messages).await })
        })
        .collect();
    let mut latencies = Vec::with_capacity(tasks.len() * messages);
    for task in tasks {
        latencies.extend(task.await.expect("conversation task"));
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    Conversations {
        latencies,
        wall,
        requests: api.requests.load(Ordering::Relaxed) - requests_before,
        polls: api.polls.load(Ordering::Relaxed) - polls_before,
    }
}

/// One chat's messages, the sides taking turns (the customer first). Returns the latencies
/// of the messages delivered before the first error, if any.
async fn conversation(api: &Api, mut session: Session, messages: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(messages);
    let chat = format!("/genesys/1/service/{}/ixn/chat/refresh", session.service);
    let agent_chat = format!(
        "/genesys/1/agent/{}/chat/{}",
        session.agent, session.service
    );
    for k in 0..messages {
        let text = format!("chat {} message {k}", session.n);
        let started = Instant::now();
        let delivered = if k % 2 == 0 {
            let fields = [("message", text.as_str())];
            let send = api.customer(&chat, &session.user).send_form(api, &fields);
            let watch = agent_watch(api, &agent_chat, &mut session.agent_position, &text);
            tokio::try_join!(send, within_deadline(api, &text, watch))
        } else {
            let send = api
                .admin(Method::POST, &format!("{agent_chat}/message"))
                .send_json(api, json!({ "text": text }));
            let watch = customer_watch(api, &chat, &session.user, &text);
            tokio::try_join!(send, within_deadline(api, &text, watch))
        };
        match delivered {
            Ok((_, seen_at)) => latencies.push(seen_at - started),
            Err(_) => break,
        }
    }
    latencies
}

/// `watch`, or an error once [`MESSAGE_DEADLINE`] has passed.
async fn within_deadline(
    api: &Api,
    text: &str,
    watch: impl std::future::Future<Output = Result<Instant, String>>,
) -> Result<Instant, String> {
    tokio::time::timeout(MESSAGE_DEADLINE, watch)
        .await
        .unwrap_or_else(|_| {
            Err(api.errors.record(format!(
                "`{text}` not seen by the other side within {} s",
                MESSAGE_DEADLINE.as_secs()
            )))
        })
}

/// The agent polls its transcript from `position` until `text` is in it; returns when.
async fn agent_watch(
    api: &Api,
    agent_chat: &str,
    position: &mut u64,
    text: &str,
) -> Result<Instant, String> {
    loop {
        let view = api
            .admin(
                Method::GET,
                &format!("{agent_chat}?transcriptPosition={position}"),
            )
            .poll(api)
            .await?;
        let seen_at = Instant::now();
        // Everything from `position` came back: the next poll reads from what is next.
        if let Some(next) = view["transcriptPosition"].as_u64() {
            *position = next;
        }
        let rows = view["transcript"].as_array().map_or(&[][..], Vec::as_slice);
        if rows.iter().any(|event| is_message(&event["row"], text)) {
            return Ok(seen_at);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The customer polls `refresh` until `text` is among the rows shown; returns when.
async fn customer_watch(
    api: &Api,
    refresh: &str,
    user: &str,
    text: &str,
) -> Result<Instant, String> {
    loop {
        let reply = api.customer(refresh, user).poll_form(api).await?;
        let seen_at = Instant::now();
        if customer_rows(&reply).any(|row| is_message(row, text)) {
            return Ok(seen_at);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The `transcriptToShow` rows of a customer reply.
fn customer_rows(reply: &Value) -> impl Iterator<Item = &Value> {
    reply["transcriptToShow"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
}

/// Whether a transcript row (`[type, nickname, text, time, userType]`) is message `text`.
fn is_message(row: &Value, text: &str) -> bool {
    row[0] == "Message.Text" && row[2] == text
}

fn agent_id(a: usize) -> String {
    format!("bench-agent-{a:03}")
}

/// The HTTP side of the benchmark: one client, request counters, the errors seen.
#[derive(Clone)]
struct Api {
    client: Client,
    base: String,
    requests: Arc<AtomicU64>,
    polls: Arc<AtomicU64>,
    errors: Arc<Errors>,
}

impl Api {
    fn new(addr: SocketAddr) -> Self {
        Api {
            client: Client::new(),
            base: format!("http://{addr}"),
            requests: Arc::default(),
            polls: Arc::default(),
            errors: Arc::default(),
        }
    }

    /// A request with the admin bearer token (admin and agent desktop routes).
    fn admin(&self, method: Method, path: &str) -> Call {
        Call {
            what: format!("{method} {path}"),
            builder: self
                .client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(ADMIN_TOKEN),
        }
    }

    /// A customer's POST as `gms_user` `user`.
    fn customer(&self, path: &str, user: &str) -> Call {
        Call {
            what: format!("POST {path}"),
            builder: self
                .client
                .post(format!("{}{path}", self.base))
                .header("gms_user", user),
        }
    }
}

/// A request being built, with what it is for error messages.
struct Call {
    what: String,
    builder: RequestBuilder,
}

impl Call {
    async fn send_json(self, api: &Api, body: Value) -> Result<Value, String> {
        let builder = self.builder.json(&body);
        send(api, &self.what, builder).await
    }

    async fn send_form(self, api: &Api, fields: &[(&str, &str)]) -> Result<Value, String> {
        let builder = self.builder.form(fields);
        send(api, &self.what, builder).await
    }

    async fn send_empty(self, api: &Api) -> Result<Value, String> {
        send(api, &self.what, self.builder).await
    }

    /// A poll: a GET, counted as a poll.
    async fn poll(self, api: &Api) -> Result<Value, String> {
        api.polls.fetch_add(1, Ordering::Relaxed);
        send(api, &self.what, self.builder).await
    }

    /// A poll: an empty form (`refresh` without a message), counted as a poll.
    async fn poll_form(self, api: &Api) -> Result<Value, String> {
        api.polls.fetch_add(1, Ordering::Relaxed);
        send(api, &self.what, self.builder.form(&[] as &[(&str, &str)])).await
    }
}

/// Sends, and reads a 2xx JSON reply; anything else is recorded as an error.
async fn send(api: &Api, what: &str, builder: RequestBuilder) -> Result<Value, String> {
    api.requests.fetch_add(1, Ordering::Relaxed);
    let response = builder
        .send()
        .await
        .map_err(|err| api.errors.record(format!("{what}: {err}")))?;
    let status = response.status();
    let text = response.text().await.map_err(|err| {
        api.errors
            .record(format!("{what}: reading the reply: {err}"))
    })?;
    if !status.is_success() {
        return Err(api.errors.record(format!("{what}: {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|err| {
        api.errors.record(format!(
            "{what}: {status} with a body that is not JSON ({err}): {text}"
        ))
    })
}

/// The errors seen: all counted, the first few kept to print.
#[derive(Default)]
struct Errors {
    count: AtomicU64,
    shown: Mutex<Vec<String>>,
}

impl Errors {
    /// Counts `error`, keeps it if it is among the first; returns it.
    fn record(&self, error: String) -> String {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        if shown.len() < ERRORS_SHOWN {
            shown.push(error.clone());
        }
        error
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn print(&self) {
        let shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        for error in shown.iter() {
            println!("  ! {error}");
        }
        let more = self.count().saturating_sub(shown.len() as u64);
        if more > 0 {
            println!("  ! ... and {more} more");
        }
    }
}

// ----- the bare baseline -----

/// The bare chat endpoint, running.
struct Bare {
    addr: SocketAddr,
    committer: BareCommitter,
    stop: oneshot::Sender<()>,
}

/// One bare chat: its rows, and how many of them its customer was shown.
#[derive(Default)]
struct BareChat {
    rows: Vec<[String; 5]>,
    shown: usize,
}

type BareChats = Arc<HashMap<String, Arc<tokio::sync::Mutex<BareChat>>>>;

/// The bare sessions: chat `n` is `bare-{n}`, everything else as callbackd's.
fn bare_sessions(chats: usize) -> Vec<Session> {
    (0..chats)
        .map(|n| Session {
            n,
            service: bare_id(n),
            user: format!("bench-customer-{n:05}"),
            agent: "bare-agent".into(),
            agent_position: 1,
        })
        .collect()
}

fn bare_id(n: usize) -> String {
    format!("bare-{n:05}")
}

/// A minimal warp + sled chat server on callbackd's paths, answering the shapes the
/// conversations read: a send appends one transcript row (sled insert, key chat ++ position
/// big-endian, bincode value), group-commits (flush + fdatasync of the log) and only then
/// shows it; polls read memory. A chat's lock is held across the commit, as callbackd holds
/// a session's, so a poll never shows a row that is not durable.
async fn start_bare_chat(dir: &std::path::Path, chats: usize) -> Bare {
    let db = sled::Config::new().path(dir).open().expect("sled opens");
    let tree = db.open_tree("transcripts").unwrap();
    let log = std::fs::File::open(dir.join("db")).expect("sled's log");
    let committer = BareCommitter::start(db, log);
    let map: BareChats = Arc::new((0..chats).map(|n| (bare_id(n), Arc::default())).collect());
    let append = {
        let (tree, committer) = (tree.clone(), committer.clone());
        move |chats: BareChats, id: String, row: [String; 5]| {
            let (tree, committer) = (tree.clone(), committer.clone());
            async move {
                let mut chat = chats.get(&id)?.clone().lock_owned().await;
                let mut key = id.into_bytes();
                key.extend_from_slice(&(chat.rows.len() as u64 + 1).to_be_bytes());
                let value = bincode::serde::encode_to_vec(&row, bincode::config::standard())
                    .expect("encodes");
                tree.insert(key, value).expect("insert");
                committer.wait().await;
                chat.rows.push(row);
                Some(chat)
            }
        }
    };
    let with_chats = {
        let map = map.clone();
        warp::any().map(move || map.clone())
    };
    let not_found = || {
        warp::reply::with_status(
            warp::reply::json(&json!({})),
            warp::http::StatusCode::NOT_FOUND,
        )
    };
    let ok = |body: Value| {
        warp::reply::with_status(warp::reply::json(&body), warp::http::StatusCode::OK)
    };
    // POST /genesys/1/service/{id}/ixn/chat/refresh [message]
    let customer = warp::post()
        .and(warp::path!(
            "genesys" / "1" / "service" / String / "ixn" / "chat" / "refresh"
        ))
        .and(warp::body::form::<HashMap<String, String>>())
        .and(with_chats.clone())
        .then({
            let append = append.clone();
            move |id: String, form: HashMap<String, String>, chats: BareChats| {
                let append = append.clone();
                async move {
                    let mut chat = match form.get("message") {
                        Some(text) => {
                            let row = bare_row(text, "CLIENT");
                            match append(chats, id, row).await {
                                Some(chat) => chat,
                                None => return not_found(),
                            }
                        }
                        None => match chats.get(&id).cloned() {
                            Some(chat) => chat.lock_owned().await,
                            None => return not_found(),
                        },
                    };
                    let rows = chat.rows[chat.shown..].to_vec();
                    chat.shown = chat.rows.len();
                    ok(json!({
                        "transcriptToShow": rows,
                        "transcriptPosition": (chat.rows.len() + 1).to_string(),
                    }))
                }
            }
        });
    // POST /genesys/1/agent/{agent}/chat/{id}/message {"text"}
    let agent_send = warp::post()
        .and(warp::path!(
            "genesys" / "1" / "agent" / String / "chat" / String / "message"
        ))
        .and(warp::body::json::<Value>())
        .and(with_chats.clone())
        .then(
            move |_agent: String, id: String, body: Value, chats: BareChats| {
                let append = append.clone();
                async move {
                    let row = bare_row(body["text"].as_str().unwrap_or(""), "AGENT");
                    match append(chats, id, row).await {
                        Some(_) => ok(json!({})),
                        None => not_found(),
                    }
                }
            },
        );
    // GET /genesys/1/agent/{agent}/chat/{id}?transcriptPosition=N
    let agent_poll =
        warp::get()
            .and(warp::path!(
                "genesys" / "1" / "agent" / String / "chat" / String
            ))
            .and(warp::query::<HashMap<String, String>>())
            .and(with_chats)
            .then(
                move |_agent: String,
                      id: String,
                      query: HashMap<String, String>,
                      chats: BareChats| async move {
                    let Some(chat) = chats.get(&id) else {
                        return not_found();
                    };
                    let chat = chat.lock().await;
                    let from: usize = query
                        .get("transcriptPosition")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(1);
                    let start = from.saturating_sub(1).min(chat.rows.len());
                    let transcript: Vec<Value> = chat.rows[start..]
                        .iter()
                        .map(|row| json!({ "row": row }))
                        .collect();
                    ok(json!({
                        "transcript": transcript,
                        "transcriptPosition": chat.rows.len() + 1,
                    }))
                },
            );
    let routes = customer.or(agent_send).unify().or(agent_poll).unify();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = rx.await;
            })
            .run(),
    );
    Bare {
        addr,
        committer,
        stop,
    }
}

/// A message row as seed 003 shows it.
fn bare_row(text: &str, user_type: &str) -> [String; 5] {
    [
        "Message.Text".into(),
        "bare".into(),
        text.into(),
        "0".into(),
        user_type.into(),
    ]
}

/// The bare committer's flushes and writes at one moment.
#[derive(Clone, Copy)]
struct CommitCounts {
    flushes: u64,
    writes: u64,
}

impl CommitCounts {
    /// Writes per flush between `before` and these counts.
    fn per_flush_since(self, before: CommitCounts) -> f64 {
        let flushes = self.flushes - before.flushes;
        (self.writes - before.writes) as f64 / flushes.max(1) as f64
    }
}

impl BareCommitter {
    fn counts(&self) -> CommitCounts {
        let load = |counter: &Counter| counter.load(Ordering::Relaxed);
        CommitCounts {
            flushes: load(&self.syncs),
            writes: load(&self.writes),
        }
    }
}
