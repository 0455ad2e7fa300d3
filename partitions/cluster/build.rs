//! Links the binary with testkit's `link.ld` (only when building for a
//! bare-metal target; host builds of the library need nothing).

fn main() {
    println!("cargo:rerun-if-changed=../testkit/link.ld");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-T{dir}/../testkit/link.ld");
    }
}
