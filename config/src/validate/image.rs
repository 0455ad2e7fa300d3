//! The partition's kernel: an arm64 `Image` (Linux boot protocol,
//! Documentation/arch/arm64/booting.rst), and whether it fits the first
//! memory region next to the device tree.

use std::fs::File;
use std::io::Read;

use super::{Image, MIB, Part, Validator};
use crate::layout;
use crate::owned::size;
use crate::raw::RawPartition;

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
    pub(super) fn image(&mut self, raw: &RawPartition) -> Option<Image> {
        let given = &raw.image.get_ref().0;
        let span = raw.image.span();
        if given.is_empty() {
            self.diags.error(span, "image path is empty");
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
                    .error(span, format!("image not found: {}", path.display()));
                return None;
            }
        };
        // Resolve `..` and symlinks only now that it exists, so that the
        // "not found" message shows the path as the config spelled it.
        let path = path.canonicalize().unwrap_or(path);
        if !metadata.is_file() {
            self.diags.error(
                span,
                format!("image is not a regular file: {}", path.display()),
            );
            return None;
        }
        if path.to_str().is_none() {
            self.diags.error(
                span,
                format!(
                    "image path {} is not UTF-8, so include_bytes! cannot name it",
                    path.display()
                ),
            );
            return None;
        }
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
        let magic = u32::from_le_bytes(header[56..60].try_into().expect("4 bytes"));
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
            text_offset: u64_at(8),
            image_size: u64_at(16),
            span,
        })
    }

    /// The kernel goes at the first region's guest base + `text_offset`
    /// and must end before the device tree's slot at the region's end.
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
        // An `image_size` of 0 means "unknown" in the boot protocol: then
        // the file is all there is to go by.
        let footprint = image.image_size.max(image.len);
        let load = first.guest + image.text_offset;
        let slot = first.guest + first.size - DTB_SLOT;
        if load.checked_add(footprint).is_none_or(|end| end > slot) {
            self.diags.error(
                image.span.clone(),
                format!(
                    "image {} does not fit partition \"{name}\": loaded at guest {load:#x} (text_offset {:#x}) it takes {footprint:#x} bytes, but the device tree's slot starts at {slot:#x}",
                    image.path.display(),
                    image.text_offset
                ),
            );
        }
    }
}
