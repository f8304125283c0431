//! Development tools for Meterbell: the template reader, the local stack on the emulators, the
//! local API runner and queue poller, development tokens and demo data. Integration tests and
//! `make dev` / `make bench` use these; nothing here is deployed.

pub mod bench;
pub mod envfiles;
pub mod local_api;
pub mod mailbox;
pub mod poller;
pub mod receiver;
pub mod scheduler;
pub mod seed;
pub mod stack;
pub mod template;
pub mod testing;
pub mod tokens;
