//! shardstorm-suites: scenarios shared by the chaos test suites, and the `shardstorm` CLI.

pub mod scenario;
