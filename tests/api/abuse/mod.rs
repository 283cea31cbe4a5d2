//! Abuse from the customer side (issue "Security and abuse"): each test reproduces one way an
//! attacker got in or made the server work too hard, and asserts what a client now sees.
//! Load-shaped cases stay bounded in count and time; their figures live in the benchmark.

mod access;
mod cometd;
mod httpcb;
mod logs;
mod scans;
