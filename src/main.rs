//! augur: a predictive micro-segmentation controller for Open vSwitch.
#![forbid(unsafe_code)]

fn main() {
    println!("augur");
}
