//! Validates the system configuration on the host and compiles it into the
//! hypervisor (nothing parses TOML at EL2), and generates the linker script
//! from the board's facts.
//!
//! HV_CONFIG selects the TOML file (default: config/qemu-virt/default.toml).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(serde::Deserialize)]
struct BoardToml {
    load_address: u64,
    early_uart: EarlyUart,
    console_baud: u64,
    /// Whether the GIC's virtual IRQ output reaches the cores (the
    /// architecture's way); `false` for machines that leave it out.
    #[serde(default = "wired")]
    gic_virq_wired: bool,
}

fn wired() -> bool {
    true
}

/// The UART the hypervisor speaks through before it has read the DT.
#[derive(serde::Deserialize)]
struct EarlyUart {
    base: u64,
    /// A DT `compatible` string of a UART the hypervisor drives.
    compatible: String,
}

fn main() {
    println!("cargo:rerun-if-env-changed=HV_CONFIG");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    // Host builds (unit tests of the library) need no system.
    if !env::var("TARGET").unwrap().ends_with("-none-softfloat") {
        return;
    }
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let config_path = env::var_os("HV_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("config/qemu-virt/default.toml"));
    let ctx = config::Context {
        boards_dir: root.join("board"),
        build_dir: root.join("target/partitions"),
    };

    let loaded = match config::load(&config_path, &ctx) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "error: {} error(s) in {}",
                diagnostics.len(),
                config_path.display()
            );
            std::process::exit(1);
        }
    };
    for dep in &loaded.dependencies {
        println!("cargo:rerun-if-changed={}", dep.display());
    }
    fs::write(out.join("system.rs"), config::codegen::rust_source(&loaded)).unwrap();

    let board_toml = root
        .join("board")
        .join(&loaded.system.board)
        .join("board.toml");
    println!("cargo:rerun-if-changed={}", board_toml.display());
    let facts: BoardToml = toml::from_str(&fs::read_to_string(&board_toml).unwrap())
        .unwrap_or_else(|e| {
            panic!("{}: {e}", board_toml.display());
        });
    let mut consts = String::new();
    writeln!(
        consts,
        "/// Board UART used before the device tree is read: its driver and base."
    )
    .unwrap();
    let Some(kind) =
        config::model::UartKind::for_compatible([facts.early_uart.compatible.as_str()])
    else {
        panic!(
            "{}: early_uart.compatible {:?} is no UART the hypervisor drives",
            board_toml.display(),
            facts.early_uart.compatible
        );
    };
    writeln!(
        consts,
        "pub const EARLY_UART: (config::model::UartKind, u64) = (config::model::UartKind::{kind:?}, {:#x});",
        facts.early_uart.base
    )
    .unwrap();
    writeln!(consts, "/// Console line rate, bits per second.").unwrap();
    writeln!(
        consts,
        "pub const CONSOLE_BAUD: u64 = {};",
        facts.console_baud
    )
    .unwrap();
    writeln!(
        consts,
        "/// Does the GIC raise the cores' virtual IRQ line itself?"
    )
    .unwrap();
    writeln!(
        consts,
        "pub const GIC_VIRQ_WIRED: bool = {};",
        facts.gic_virq_wired
    )
    .unwrap();
    fs::write(out.join("board.rs"), consts).unwrap();
    write_linker_script(&out, facts.load_address);
}

fn write_linker_script(out: &Path, load_address: u64) {
    let script = format!(
        r#"ENTRY(_start)
SECTIONS
{{
    . = {load_address:#x};
    __image_start = .;
    __text_offset = {text_offset:#x};
    .text : {{ KEEP(*(.text.head)) *(.text.vectors) *(.text .text.*) }}
    .rodata : ALIGN(4096) {{
        __rodata_start = .;
        *(.rodata .rodata.*)
        __rodata_end = .;
    }}
    .data : ALIGN(4096) {{
        __data_start = .;
        *(.data .data.*)
        __data_end = .;
    }}
    /* The heap region: the allocator's as it is. Not zeroed at entry,
       which would take most of the boot's first 10 ms (16 MiB, 8 bytes at
       a time): nothing reads it before it is allocated, and what needs
       zeros asks for them (alloc_zeroed). */
    .heap (NOLOAD) : ALIGN(4096) {{ *(.bss.heap) }}
    .bss (NOLOAD) : ALIGN(4096) {{
        __bss_start = .;
        *(.bss .bss.*) *(COMMON)
        . = ALIGN(16);
        __bss_end = .;
    }}
    . = ALIGN(4096);
    __image_end = .;
    __image_size = __image_end - __image_start;
    /DISCARD/ : {{ *(.comment) *(.eh_frame*) *(.note*) }}
}}
"#,
        text_offset = load_address % 0x20_0000
    );
    fs::write(out.join("link.x"), script).unwrap();
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        out.join("link.x").display()
    );
}
