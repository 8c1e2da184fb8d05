//! Exits with status 1 at once: init must restart it with growing gaps.
fn main() {
    println!("crasher: starting and failing");
    std::process::exit(1);
}
