//! Rebuilds the gateway when anything under `console/` changes: the console's files
//! are embedded at compile time, and a file added there (not only one edited) must
//! reach the binary.

fn main() {
    println!("cargo:rerun-if-changed=console");
}
