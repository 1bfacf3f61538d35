//! One integration-test binary (one link step); each module is a topic.

mod common;
mod util;

mod backfill;
mod bad_input;
mod cli;
mod conformance;
mod forwarding;
mod hostile;
mod incremental;
mod items;
mod reliability;
mod reports;
mod server;
mod sql;
mod verify;
