//! The partition's kernel, an arm64 `Image` (Linux boot protocol,
//! Documentation/arch/arm64/booting.rst), and its optional initrd; and
//! whether both fit the first memory region next to the device tree.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::PathBuf;

use toml::Spanned;

use super::{Image, Initrd, MIB, Part, Validator};
use crate::layout;
use crate::owned::size;
use crate::raw::{RawPartition, Str};

/// The generated device tree takes the last 2 MiB of the first region.
const DTB_SLOT: u64 = layout::DTB_SLOT_SIZE;
/// Image (at least one 2 MiB-aligned block) plus the device-tree slot.
const MIN_FIRST_REGION: u64 = 4 * MIB;
/// The boot protocol wants the kernel at a 2 MiB-aligned base plus its
/// `text_offset`.
const KERNEL_BASE_ALIGN: u64 = layout::KERNEL_BASE_ALIGN;
const IMAGE_HEADER_LEN: usize = layout::image::HEADER_SIZE;
const IMAGE_MAGIC: u32 = layout::image::MAGIC_VALUE;

impl Validator<'_, '_> {
    /// Resolves an `image` or `initrd` path: `@/x` is `x` in the build
    /// directory, anything else is relative to the config file's folder.
    /// The file must exist, be a regular file and have a UTF-8 path (for
    /// `include_bytes!`). `what` names the key in messages.
    fn input_file(&mut self, value: &Spanned<Str>, what: &str) -> Option<(PathBuf, Metadata)> {
        let given = &value.get_ref().0;
        let span = value.span();
        if given.is_empty() {
            self.diags.error(span, format!("{what} path is empty"));
            return None;
        }
        let path = match given.strip_prefix("@/") {
            Some(rest) => self.ctx.build_dir.join(rest),
            None => self.config_dir.join(given),
        };
        let path = std::path::absolute(&path).unwrap_or(path);
        let metadata = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => {
                self.diags
                    .error(span, format!("{what} not found: {}", path.display()));
                return None;
            }
        };
        // Resolve `..` and symlinks only now that it exists, so that the
        // "not found" message shows the path as the config spelled it.
        let path = path.canonicalize().unwrap_or(path);
        if !metadata.is_file() {
            self.diags.error(
                span,
                format!("{what} is not a regular file: {}", path.display()),
            );
            return None;
        }
        if path.to_str().is_none() {
            self.diags.error(
                span,
                format!(
                    "{what} path {} is not UTF-8, so include_bytes! cannot name it",
                    path.display()
                ),
            );
            return None;
        }
        Some((path, metadata))
    }

    pub(super) fn image(&mut self, raw: &RawPartition) -> Option<Image> {
        let span = raw.image.span();
        let (path, metadata) = self.input_file(&raw.image, "image")?;
        let mut header = Vec::with_capacity(IMAGE_HEADER_LEN);
        let read = File::open(&path)
            .and_then(|f| f.take(IMAGE_HEADER_LEN as u64).read_to_end(&mut header));
        if let Err(e) = read {
            self.diags
                .error(span, format!("cannot read image {}: {e}", path.display()));
            return None;
        }
        let len = metadata.len();
        if header.len() < IMAGE_HEADER_LEN {
            self.diags.error(
                span,
                format!("image {} is too small to be an arm64 Image ({len} bytes; the header alone is 64)", path.display()),
            );
            return None;
        }
        let u64_at =
            |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let magic_at = layout::image::MAGIC;
        let magic = u32::from_le_bytes(header[magic_at..magic_at + 4].try_into().expect("4 bytes"));
        if magic != IMAGE_MAGIC {
            self.diags.error(
                span,
                format!(
                    "image {} is not an arm64 Image: no \"ARM\\x64\" magic at offset 56",
                    path.display()
                ),
            );
            return None;
        }
        Some(Image {
            path,
            len,
            text_offset: u64_at(layout::image::TEXT_OFFSET),
            image_size: u64_at(layout::image::IMAGE_SIZE),
            span,
        })
    }

    /// `initrd`, if given: any readable, non-empty regular file. Its
    /// contents are the guest's business.
    pub(super) fn initrd(&mut self, raw: &RawPartition) -> Option<Initrd> {
        let value = raw.initrd.as_ref()?;
        let span = value.span();
        let (path, metadata) = self.input_file(value, "initrd")?;
        if let Err(e) = File::open(&path) {
            self.diags
                .error(span, format!("cannot read initrd {}: {e}", path.display()));
            return None;
        }
        let len = metadata.len();
        if len == 0 {
            self.diags
                .error(span, format!("initrd {} is empty", path.display()));
            return None;
        }
        Some(Initrd { path, len, span })
    }

    /// The first region holds, from its base up: the kernel at
    /// `guest + text_offset`, the initrd (if any) at the next 2 MiB
    /// boundary, and the device tree in the last 2 MiB (see
    /// `layout::initrd_address`). Each must end before the next begins.
    pub(super) fn image_fits(&mut self, part: &Part<'_>) {
        let (Some(image), Some(Some(first))) = (&part.image, part.memory.first()) else {
            return;
        };
        let raw_first = part.raw.memory.get_ref()[0].get_ref();
        let name = &part.name;
        if first.size < MIN_FIRST_REGION {
            self.diags.error(
                raw_first.size.span(),
                format!(
                    "first memory region of partition \"{name}\" is {}; it must be at least 4 MiB (the image, and the device tree in its last 2 MiB)",
                    size(first.size)
                ),
            );
            return;
        }
        if !first.guest.is_multiple_of(KERNEL_BASE_ALIGN) {
            self.diags.error(
                raw_first.guest.span(),
                format!(
                    "guest address {:#x} of the first memory region of partition \"{name}\" is misaligned: the kernel needs a 2 MiB aligned base",
                    first.guest
                ),
            );
            return;
        }
        let footprint = layout::kernel_size(image.image_size, image.len);
        // The region's end does not overflow: memory_map checked it
        // against the 39-bit limit.
        let slot = first.guest + first.size - DTB_SLOT;
        let load = first.guest.saturating_add(image.text_offset);
        if load.checked_add(footprint).is_none_or(|end| end > slot) {
            self.diags.error(
                image.span.clone(),
                format!(
                    "image {} does not fit partition \"{name}\": loaded at guest {load:#x} (text_offset {:#x}) it takes {footprint:#x} bytes, but the device tree's slot starts at {slot:#x}",
                    image.path.display(),
                    image.text_offset
                ),
            );
            // Where the initrd would go depends on the image: one message.
            return;
        }
        let Some(initrd) = &part.initrd else {
            return;
        };
        let at = layout::initrd_address(first.guest, image.text_offset, footprint);
        let end = at.saturating_add(initrd.len);
        if end > slot {
            let room = match slot.saturating_sub(at) {
                0 => "no room is left".to_owned(),
                room => format!("only {} is left", size(room)),
            };
            self.diags.error(
                initrd.span.clone(),
                format!(
                    "initrd {} ({}) does not fit partition \"{name}\" by {}: it goes at guest {at:#x}, the first 2 MiB boundary after the image ({} at guest {load:#x}), and {room} before the device tree's slot at {slot:#x}",
                    initrd.path.display(),
                    size(initrd.len),
                    size(end - slot),
                    size(footprint),
                ),
            );
        }
    }
}
