//! The shared console: input focus, and one partition flooding it.

use super::beats;
use crate::scenario::{Scenario, consecutive};

/// Console input reaches the focused partition only; Ctrl-] 2 moves the
/// focus to the second partition.
pub(super) fn console_focus() -> Scenario {
    Scenario::new("console-focus", "config/qemu-virt/tests/console.toml")
        .timeout(30)
        .type_on(r"^\[right\] echo: ready", b"hello\r")
        .type_on(r"^\[left\] echo: got 'hello'", b"\x1d2")
        .type_on(r"console: input goes to partition right", b"world\r")
        .expect(r"^\[left\] echo: got 'hello'$")
        .expect(r"^\[hv\] INFO  console: input goes to partition right$")
        .expect(r"^\[right\] echo: got 'world'$")
        .expect_none(r"^\[right\] echo: got 'hello'|^\[left\] echo: got 'world'")
}

/// The production build takes no console input: what is typed (a line,
/// the focus switch, another line) reaches nobody, while partitions' output
/// and the hypervisor's warnings (a flooding partition's dropped lines) go
/// out as in the development build, and nothing below a warning does.
/// `console-focus` is the same echo program answering in the development
/// build.
pub(super) fn console_production() -> Scenario {
    Scenario::new(
        "console-production",
        "config/qemu-virt/tests/console-production.toml",
    )
    .production()
    .timeout(40)
    .type_on(r"^\[echo\] echo: ready", b"hello\r\x1d2world\r\x1d1again\r")
    .expect(r"^\[echo\] echo: ready")
    .expect(r"^\[hv\] WARN  console: flood: \d+ line\(s\) dropped")
    // Typed while the flood runs; an echo would come within milliseconds.
    .settle(3000)
    .expect_none(r"echo: got")
    .expect_none(r"console: input goes to")
    .expect_none(r"^\[hv\] (INFO|DEBUG|TRACE) ")
}

/// A partition writing console lines as fast as it can loses its own lines
/// (counted and reported) and nobody else's: the heartbeat's numbered
/// lines all arrive, whole, in order.
pub(super) fn console_flood() -> Scenario {
    Scenario::new("console-flood", "config/qemu-virt/tests/flood.toml")
        .timeout(40)
        .expect(r"^\[hv\] WARN  console: flood: \d+ line\(s\) dropped")
        .expect(r"^\[beat\] heartbeat: n=100 ")
        .expect_none(r"^\[beat\] .*\[|^\[flood\] .*\[beat\]")
        .check("every heartbeat arrives, in order", |lines| {
            consecutive(&beats(lines, "beat"))
        })
        .check("flood lines arrive whole", |lines| {
            let cut = lines
                .iter()
                .filter(|l| l.starts_with("[flood] ") && !l.ends_with("again and again and again"))
                .count();
            if cut == 0 {
                Ok(())
            } else {
                Err(format!("{cut} flood line(s) not whole"))
            }
        })
}
