//! Leaves a child behind and exits: the child is reparented to init, which must reap it.
fn main() {
    if std::env::args().nth(1).as_deref() == Some("child") {
        std::thread::sleep(std::time::Duration::from_millis(500));
        return;
    }
    match std::process::Command::new("/bin/orphaner")
        .arg("child")
        .spawn()
    {
        Ok(child) => println!("orphaner: left child {} behind", child.id()),
        Err(e) => println!("orphaner: cannot spawn: {e}"),
    }
}
