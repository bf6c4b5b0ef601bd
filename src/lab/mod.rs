//! Offline tools around the product, never on the serving path: offline evaluation of the
//! served rankings (`eval`, `quality`), benchmarks (`bench`), simulated viewers driving a server
//! (`simulate`) and synthetic data for scale runs (`generate`).

pub mod bench;
pub mod eval;
pub mod generate;
pub mod later_sitting;
pub mod quality;
pub mod simulate;
