//! The arm64 `Image` the hypervisor loads, from whatever Debian ships as
//! `/boot/vmlinuz-*`.
//!
//! Three shapes exist: the plain `Image` itself (Debian's arm64 kernels,
//! which are also PE/COFF files for the EFI stub, Authenticode-signed in
//! the signed packages); a gzip-compressed `Image`; and an EFI "zboot"
//! image, a small PE/COFF loader with the compressed `Image` as payload.

use std::io::Read as _;

use anyhow::{Context as _, Result, bail};
use flate2::read::GzDecoder;

/// Offset and value of the arm64 boot header's magic ("ARM\x64").
const ARM64_MAGIC_AT: usize = 56;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// zboot header: "MZ", then "zimg" at 4, payload offset and size at 8 and
/// 12, the compression's name (NUL-terminated) at 24.
const ZBOOT_TYPE: &[u8; 4] = b"zimg";

/// What `vmlinuz` turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Shape {
    /// Already a plain Image; `signature` is the size of the Authenticode
    /// signature cut off its end (0 when unsigned).
    Image {
        signature: usize,
    },
    Gzip,
    Zboot(String),
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Image { signature: 0 } => write!(f, "a plain Image"),
            Shape::Image { signature } => write!(
                f,
                "a plain Image with a {signature}-byte PE signature (removed)"
            ),
            Shape::Gzip => write!(f, "a gzip-compressed Image"),
            Shape::Zboot(compression) => write!(f, "an EFI zboot image ({compression} payload)"),
        }
    }
}

/// The plain Image in `vmlinuz`, and what `vmlinuz` was.
pub fn image_from_vmlinuz(vmlinuz: &[u8]) -> Result<(Vec<u8>, Shape)> {
    if is_image(vmlinuz) {
        let (image, signature) = strip_pe_signature(vmlinuz)?;
        return Ok((image, Shape::Image { signature }));
    }
    if vmlinuz.starts_with(&[0x1f, 0x8b]) {
        let image = gunzip(vmlinuz)?;
        return checked(image, Shape::Gzip);
    }
    if vmlinuz.starts_with(b"MZ") && vmlinuz.get(4..8) == Some(ZBOOT_TYPE) {
        let offset = le32(vmlinuz, 8)? as usize;
        let size = le32(vmlinuz, 12)? as usize;
        let name = vmlinuz.get(24..56).context("zboot header is cut short")?;
        let name = String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap_or_default())
            .into_owned();
        let payload = offset
            .checked_add(size)
            .and_then(|end| vmlinuz.get(offset..end))
            .context("zboot payload lies outside the file")?;
        let image = match name.as_str() {
            "gzip" => gunzip(payload)?,
            "xzkern" | "xz" => {
                let mut out = Vec::new();
                lzma_rs::xz_decompress(&mut &payload[..], &mut out)
                    .map_err(|e| anyhow::anyhow!("zboot xz payload: {e}"))?;
                out
            }
            other => {
                bail!("EFI zboot image with a `{other}` payload: only gzip and xz are handled")
            }
        };
        return checked(image, Shape::Zboot(name));
    }
    bail!("vmlinuz is neither an arm64 Image, gzip data nor an EFI zboot image")
}

fn checked(image: Vec<u8>, shape: Shape) -> Result<(Vec<u8>, Shape)> {
    if !is_image(&image) {
        bail!("{shape} that does not hold an arm64 Image");
    }
    let (image, _) = strip_pe_signature(&image)?;
    Ok((image, shape))
}

fn is_image(data: &[u8]) -> bool {
    data.get(ARM64_MAGIC_AT..ARM64_MAGIC_AT + 4) == Some(ARM64_MAGIC)
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    GzDecoder::new(data)
        .read_to_end(&mut out)
        .context("cannot gunzip the kernel")?;
    Ok(out)
}

/// The Image without the Authenticode signature that a signed EFI-stub
/// kernel carries at its end (the PE certificate table). Only the EFI
/// loader reads it; the hypervisor copies the file as is, so it is dead
/// weight. The certificate-table entry is cleared to keep the PE file
/// consistent. Returns the image and how many bytes were cut.
pub fn strip_pe_signature(image: &[u8]) -> Result<(Vec<u8>, usize)> {
    let unchanged = || Ok((image.to_vec(), 0));
    if !image.starts_with(b"MZ") {
        return unchanged();
    }
    let pe = le32(image, 0x3c)? as usize;
    if image.get(pe..pe + 4) != Some(b"PE\0\0") {
        return unchanged();
    }
    let optional = pe + 24;
    // PE32+, with at least five data directories (the fifth, index 4, is
    // the certificate table: file offset and size).
    if le16(image, optional)? != 0x20b || le32(image, optional + 108)? < 5 {
        return unchanged();
    }
    let entry = optional + 112 + 4 * 8;
    let (offset, size) = (
        le32(image, entry)? as usize,
        le32(image, entry + 4)? as usize,
    );
    if offset == 0 || size == 0 {
        return unchanged();
    }
    if offset + size != image.len() {
        bail!(
            "the PE signature ({size} bytes at {offset:#x}) is not at the end of the {}-byte kernel",
            image.len()
        );
    }
    let mut out = image[..offset].to_vec();
    out[entry..entry + 8].fill(0);
    Ok((out, size))
}

fn le16(data: &[u8], at: usize) -> Result<u16> {
    let bytes = data.get(at..at + 2).context("kernel header is cut short")?;
    Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn le32(data: &[u8], at: usize) -> Result<u32> {
    let bytes = data.get(at..at + 4).context("kernel header is cut short")?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write as _;

    /// A fake Image: arm64 header, PE header with a certificate table of
    /// `signature` bytes at the end when non-zero.
    fn image(signature: usize) -> Vec<u8> {
        let mut data = vec![0u8; 0x400];
        data[..2].copy_from_slice(b"MZ");
        data[ARM64_MAGIC_AT..ARM64_MAGIC_AT + 4].copy_from_slice(ARM64_MAGIC);
        data[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        data[0x40..0x44].copy_from_slice(b"PE\0\0");
        let optional = 0x40 + 24;
        data[optional..optional + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        data[optional + 108..optional + 112].copy_from_slice(&16u32.to_le_bytes());
        data[0x300] = 0xaa;
        if signature > 0 {
            let entry = optional + 112 + 32;
            data[entry..entry + 4].copy_from_slice(&0x400u32.to_le_bytes());
            data[entry + 4..entry + 8].copy_from_slice(&(signature as u32).to_le_bytes());
            data.extend(std::iter::repeat_n(0x55, signature));
        }
        data
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_images_pass_through() {
        let (out, shape) = image_from_vmlinuz(&image(0)).unwrap();
        assert_eq!(out, image(0));
        assert_eq!(shape, Shape::Image { signature: 0 });
    }

    #[test]
    fn signatures_are_cut_off() {
        let (out, shape) = image_from_vmlinuz(&image(0x88)).unwrap();
        assert_eq!(shape, Shape::Image { signature: 0x88 });
        assert_eq!(out, image(0), "same bytes as the unsigned image");
        let mut misplaced = image(0x88);
        misplaced.push(0);
        assert!(image_from_vmlinuz(&misplaced).is_err());
    }

    #[test]
    fn gzip_images() {
        let (out, shape) = image_from_vmlinuz(&gzip(&image(0x10))).unwrap();
        assert_eq!((out, shape), (image(0), Shape::Gzip));
        assert!(image_from_vmlinuz(&gzip(b"not a kernel")).is_err());
    }

    #[test]
    fn zboot_images() {
        let payload = gzip(&image(0));
        let mut zboot = vec![0u8; 0x100];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(ZBOOT_TYPE);
        zboot[8..12].copy_from_slice(&0x100u32.to_le_bytes());
        zboot[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        zboot[24..28].copy_from_slice(b"gzip");
        zboot.extend_from_slice(&payload);
        zboot.extend_from_slice(&[0; 16]);
        let (out, shape) = image_from_vmlinuz(&zboot).unwrap();
        assert_eq!((out, shape), (image(0), Shape::Zboot("gzip".into())));

        zboot[24..28].copy_from_slice(b"zstd");
        let err = image_from_vmlinuz(&zboot).unwrap_err().to_string();
        assert!(err.contains("`zstd` payload"), "{err}");
        zboot[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(image_from_vmlinuz(&zboot).is_err());
    }

    #[test]
    fn other_data_is_refused() {
        assert!(image_from_vmlinuz(b"\x7fELF").is_err());
        assert!(image_from_vmlinuz(&[]).is_err());
    }
}
