//! The `shardstorm` command line (being written).

fn main() {
    let result = shardstorm_harness::run(&shardstorm_harness::RunSpec::standard(0));
    println!("seed 0: {} (trace {})", result.violation.map_or("pass".to_string(), |v| v.to_string()), result.trace_hash);
}
