//! Benchmark of validate + compile + render JSON over generated plans (filled in below).
fn main() {}
