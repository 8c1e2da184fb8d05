//! Links the UEFI program reproducibly. lld-link otherwise stamps the PE header with the time
//! of the build (/Brepro: a hash of the contents instead) and refers to a PDB whose identity
//! depends on the build's folders (/DEBUG:NONE: no PDB; the program is stripped anyway).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("uefi") {
        println!("cargo:rustc-link-arg-bins=/Brepro");
        println!("cargo:rustc-link-arg-bins=/DEBUG:NONE");
    }
}
