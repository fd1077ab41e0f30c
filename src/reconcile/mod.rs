//! Reconcile: what must change so that the running forwards match the desired ones.
//!
//! The planner is a pure function of the two sets, so every decision it makes is unit-tested
//! without a cluster, and `kftray up --dry-run` can print exactly what a run would do.

mod plan;

pub use plan::{Action, Plan, plan};
