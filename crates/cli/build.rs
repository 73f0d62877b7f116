//! Sets `cfg(waybill_postgres)` when `WAYBILL_TEST_POSTGRES_URL` is set (and not empty), so the
//! tests that need PostgreSQL (the multi-node and read-replica tests) are ignored, with the
//! reason in the test summary, when it is not: a test that cannot run is not counted as passed.
//! The same rule as the store's and the server's build scripts.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=WAYBILL_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(waybill_postgres)");
    let set = std::env::var("WAYBILL_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty());
    if set {
        println!("cargo::rustc-cfg=waybill_postgres");
    }
}
