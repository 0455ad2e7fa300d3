//! `cargo xtask new-config --board B [--partitions N] [--give-all-except
//! PATH,...] [-o FILE]`: a starting config for a board, written from its
//! device tree by `config::generate` (which checks it before it is
//! written). The board's shared disk comes from its `board.toml` (`[qemu]
//! disk`) and `disk.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use config::generate::{BoardDisk, NewConfig};

use crate::board::Board;
use crate::{check_config, disk, paths};

const USAGE: &str = "usage: cargo xtask new-config --board B [--partitions N] \
                     [--give-all-except PATH,...] [-o FILE]";

/// `cargo xtask new-config ...`.
pub fn command(args: &[String]) -> Result<()> {
    let mut board = None;
    let mut partitions = 2;
    let mut all_except = None;
    let mut output: Option<PathBuf> = None;
    let mut args = crate::cli::Options::new(args, USAGE);
    while let Some(option) = args.next_option() {
        match option {
            "--board" => board = Some(args.value(option)?.to_owned()),
            "--partitions" => {
                let v = args.value(option)?;
                partitions = v
                    .parse()
                    .with_context(|| format!("--partitions {v}: not a number"))?;
            }
            "--give-all-except" => {
                let v = args.value(option)?;
                all_except = Some(
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "-o" | "--output" => output = Some(PathBuf::from(args.value(option)?)),
            _ => return Err(args.unexpected(option)),
        }
    }
    let Some(board) = board else {
        bail!("--board is required\n{USAGE}");
    };
    let text = generate(&board, partitions, all_except)?;
    match output {
        Some(path) => {
            std::fs::write(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {} (check-config passes it)", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// The config text for `board`.
pub fn generate(board: &str, partitions: usize, all_except: Option<Vec<String>>) -> Result<String> {
    generate_in(&check_config::context(), board, partitions, all_except)
}

/// [`generate`], its images found through `ctx`.
fn generate_in(
    ctx: &config::Context,
    board: &str,
    partitions: usize,
    all_except: Option<Vec<String>>,
) -> Result<String> {
    let options = NewConfig {
        board: board.to_owned(),
        partitions,
        all_except,
        disk: board_disk(board)?,
    };
    config::generate::new_config(ctx, &options).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The board's disk: its node (`board.toml`) and its GPT partitions
/// (`disk.toml`), if it has both.
fn board_disk(name: &str) -> Result<Option<BoardDisk>> {
    let board = Board::load(name)?;
    let Some(device) = board.qemu.and_then(|q| q.disk) else {
        return Ok(None);
    };
    let layout_path = disk::layout_path(name);
    if !layout_path.is_file() {
        return Ok(None);
    }
    let layout = disk::Layout::load(&layout_path)?;
    Ok(Some(BoardDisk {
        device,
        gpt: layout.partitions.iter().map(|p| p.name.clone()).collect(),
        layout: relative(&layout_path),
    }))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(paths::root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boards' configs, with a placeholder image that is only an
    /// arm64 Image header (the generated configs boot `@/hello.img`).
    fn context(test: &str) -> (config::Context, PathBuf) {
        let dir = std::env::temp_dir().join(format!("new-config-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut header = vec![0u8; 64];
        header[16..24].copy_from_slice(&0x1_0000u64.to_le_bytes());
        header[56..60].copy_from_slice(b"ARM\x64");
        std::fs::write(dir.join("hello.img"), header).unwrap();
        let ctx = config::Context {
            boards_dir: paths::boards_dir(),
            build_dir: dir.clone(),
        };
        (ctx, dir)
    }

    /// What `new-config` writes for each board is the example the suite
    /// boots (`config/<board>/examples/new-config.toml`).
    #[test]
    fn the_examples_are_what_it_writes() {
        let (ctx, dir) = context("examples");
        for board in ["qemu-virt", "imx8mp-evk"] {
            let text = generate_in(&ctx, board, 2, None).unwrap();
            let file = paths::root().join(format!("config/{board}/examples/new-config.toml"));
            let example = std::fs::read_to_string(&file).unwrap_or_default();
            assert!(
                text == example,
                "{} is not what new-config writes now; regenerate it with\n  \
                 cargo xtask new-config --board {board} -o {}",
                file.display(),
                file.display()
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn all_except_and_more_partitions() {
        let (ctx, dir) = context("options");
        let except = vec!["/flash@0".to_string(), "/fw-cfg@9020000".to_string()];
        let text = generate_in(&ctx, "qemu-virt", 3, Some(except)).unwrap();
        assert!(text.contains(r#"devices = { all_except = ["/flash@0", "/fw-cfg@9020000"] }"#));
        assert!(text.contains("name = \"partition3\""));
        // Cores 1, 2 and 3: one each.
        assert!(text.contains("cpus = [3]"));
        let err = generate_in(&ctx, "qemu-virt", 4, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 3 partition(s)"), "{err}");
        assert!(generate_in(&ctx, "qemu-virt", 0, None).is_err());
        let err = generate_in(&ctx, "qemu-virt", 2, Some(vec!["/nowhere".into()]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nowhere"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
