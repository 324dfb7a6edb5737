//! Record compression: decompressing and compressing the records section of a RecordBatch v2, so that a topic
//! whose `compression.type` names a codec stores every client batch in it, as Kafka does. Runs on the owner
//! shard of the partition, in the append path, and only for a client batch whose codec differs from the
//! topic's: every other batch (the topic's codec, `compression.type=producer`, replicated and coordinator
//! batches) is stored byte for byte as sent, never decompressed.
//!
//! Recompressing keeps every record byte (the records section is the same bytes whatever the codec), so offset
//! deltas, timestamps, keys, values and headers are unchanged; the header keeps its timestamps, producer id,
//! epoch, base sequence and record count; only the codec bits of `attributes`, `batchLength` and the CRC change.
//!
//! **Decompression is bounded** ([`DECOMPRESSED_BYTES_MAX`]): a few hundred bytes of zeros can claim gigabytes
//! (a compression bomb). Every decoder writes through a limit and stops one byte past it, and no allocation
//! is sized by a length the input declares before that length was checked against the limit. zstd's window
//! is capped too, since its decoder allocates the window the frame asks for.

use std::io::{Read, Write};

use zerocopy::FromBytes;

use crate::batch::{self, Compression, RecordBatchHeader, CRC_START, HEADER_BYTES, LOG_OVERHEAD_BYTES};
use crate::error::BatchError;

/// The most bytes one batch's records may decompress to. A batch is at most `max.message.bytes` (1 MiB by
/// default) compressed; record data rarely compresses better than 10-20x, so 64 MiB leaves room for honest
/// batches while a bomb costs at most this much memory (and the CPU to produce it) before it is refused.
pub const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

/// zstd's decoder allocates the window a frame declares; 2^26 bytes matches [`DECOMPRESSED_BYTES_MAX`] (levels
/// up to 19 use 8 MiB windows or less).
const ZSTD_WINDOW_LOG_MAX: u32 = 26;

/// Kafka's default levels (KIP-390): `compression.gzip.level` 6 (zlib's default), `compression.lz4.level` 9,
/// `compression.zstd.level` 3.
const GZIP_LEVEL: u32 = 6;
const LZ4_LEVEL: u32 = 9;
const ZSTD_LEVEL: i32 = 3;

/// snappy-java's stream format (`SnappyOutputStream`), which Kafka's Java clients write and every client reads:
/// this magic, version 1, compatible version 1, then blocks of (big-endian u32 length, raw snappy block).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

impl Compression {
    /// The codec's name as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec's value in the low three bits of a batch's `attributes`.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

fn corrupt(codec: Compression, reason: impl ToString) -> BatchError {
    BatchError::Decompress { codec: codec.name(), reason: reason.to_string() }
}

/// Reads `reader` to its end into a buffer of at most `max_bytes`; one byte more is a [`BatchError::
/// DecompressedTooLarge`].
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    input_bytes: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(input_bytes.saturating_mul(4).min(max_bytes));
    let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(limit).read_to_end(&mut out).map_err(|error| corrupt(codec, error))?;
    if out.len() > max_bytes {
        return Err(BatchError::DecompressedTooLarge { codec: codec.name(), max_bytes });
    }
    Ok(out)
}

/// One raw snappy block appended to `out`, its declared length checked against what `out` may still take.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), BatchError> {
    let declared = snap::raw::decompress_len(block).map_err(|error| corrupt(Compression::Snappy, error))?;
    if declared > max_bytes - out.len() {
        return Err(BatchError::DecompressedTooLarge { codec: Compression::Snappy.name(), max_bytes });
    }
    let start = out.len();
    out.resize(start + declared, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|error| corrupt(Compression::Snappy, error))?;
    out.truncate(start + written);
    Ok(())
}

/// Snappy as Kafka's clients write it: snappy-java's stream format, or (librdkafka) one raw snappy block.
fn decompress_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    if !input.starts_with(XERIAL_MAGIC) {
        snappy_block(input, &mut out, max_bytes)?;
        return Ok(out);
    }
    let mut rest = input.get(XERIAL_HEADER_BYTES..).ok_or_else(|| corrupt(Compression::Snappy, "short header"))?;
    while !rest.is_empty() {
        let (length, tail) = rest.split_at_checked(4).ok_or_else(|| corrupt(Compression::Snappy, "short block"))?;
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let (block, tail) =
            tail.split_at_checked(length).ok_or_else(|| corrupt(Compression::Snappy, "block past the end"))?;
        snappy_block(block, &mut out, max_bytes)?;
        rest = tail;
    }
    Ok(out)
}

/// Decompresses a batch's records section, refusing to produce more than `max_bytes`.
pub fn decompress(codec: Compression, input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => {
            if input.len() > max_bytes {
                return Err(BatchError::DecompressedTooLarge { codec: codec.name(), max_bytes });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(input), input.len(), max_bytes),
        Compression::Snappy => decompress_snappy(input, max_bytes),
        Compression::Lz4 => {
            let decoder = lz4::Decoder::new(input).map_err(|error| corrupt(codec, error))?;
            read_bounded(codec, decoder, input.len(), max_bytes)
        }
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|error| corrupt(codec, error))?;
            decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(|error| corrupt(codec, error))?;
            read_bounded(codec, decoder, input.len(), max_bytes)
        }
    }
}

/// Compresses records with Kafka's default level for the codec, appending to `out`.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail, and neither can any of these encoders given valid parameters (a fixed
    // level and block size): a failure here is a bug, not input.
    let failed = |error: std::io::Error| -> ! { panic!("{} compression into memory failed: {error}", codec.name()) };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
            encoder.write_all(input).unwrap_or_else(|e| failed(e));
            encoder.finish().unwrap_or_else(|e| failed(e));
        }
        Compression::Snappy => {
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(&1u32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK_BYTES) {
                let length_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let written =
                    encoder.compress(chunk, &mut out[start..]).unwrap_or_else(|e| failed(std::io::Error::other(e)));
                out.truncate(start + written);
                out[length_at..start].copy_from_slice(&(written as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            // Kafka's format: independent 64 KiB blocks, no checksums (KafkaLZ4BlockOutputStream), which the
            // Java clients' decoder requires.
            let mut encoder = lz4::EncoderBuilder::new()
                .level(LZ4_LEVEL)
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(out)
                .unwrap_or_else(|e| failed(e));
            encoder.write_all(input).unwrap_or_else(|e| failed(e));
            let (_, result) = encoder.finish();
            result.unwrap_or_else(|e| failed(e));
        }
        Compression::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).unwrap_or_else(|e| failed(e));
            encoder.write_all(input).unwrap_or_else(|e| failed(e));
            encoder.finish().unwrap_or_else(|e| failed(e));
        }
    }
}

/// How many records a records section holds: each is a varint length and that many bytes, and they fill it
/// exactly. `None` when they do not.
fn count_records(records: &[u8]) -> Option<usize> {
    let mut position = 0;
    let mut count = 0;
    while position < records.len() {
        let (length, bytes) = batch::read_varlong(&records[position..])?;
        let length = usize::try_from(length).ok()?;
        position = position.checked_add(bytes)?.checked_add(length)?;
        count += 1;
    }
    (position == records.len()).then_some(count)
}

/// Appends to `out` the batch at the start of `batch` (one that passed [`batch::validate`]) with its records in
/// `target`'s codec: the same records and header fields, new codec bits, length and CRC. The records are
/// decompressed to at most `decompressed_max_bytes` and must be exactly the batch's record count. On an error
/// `out` is left as it was.
pub fn recompress(
    batch: &[u8],
    target: Compression,
    decompressed_max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let header =
        batch::peek_header(batch).ok_or(BatchError::Truncated { needed: HEADER_BYTES, available: batch.len() })?;
    let size_bytes = header.size_bytes();
    let records_in = batch
        .get(HEADER_BYTES..size_bytes)
        .ok_or(BatchError::Truncated { needed: size_bytes, available: batch.len() })?;
    let source = header.compression().ok_or(BatchError::Invalid { reason: "unknown compression codec" })?;
    let records = decompress(source, records_in, decompressed_max_bytes)?;
    let declared = usize::try_from(header.records_count.get()).unwrap_or(0);
    if count_records(&records) != Some(declared) {
        return Err(BatchError::Invalid { reason: "the decompressed records do not match the batch's record count" });
    }
    let start = out.len();
    out.extend_from_slice(&batch[..HEADER_BYTES]);
    compress(target, &records, out);
    let rebuilt = &mut out[start..];
    let Ok(batch_length) = i32::try_from(rebuilt.len() - LOG_OVERHEAD_BYTES) else {
        let size_bytes = rebuilt.len();
        out.truncate(start);
        return Err(BatchError::TooLarge { size_bytes, max_bytes: i32::MAX as usize });
    };
    let mut size_after = 0;
    if let Ok((header, _)) = RecordBatchHeader::mut_from_prefix(&mut *rebuilt) {
        let attributes = (header.attributes.get() & !batch::ATTR_COMPRESSION_MASK) | target.attribute_bits();
        header.attributes.set(attributes);
        header.batch_length.set(batch_length);
        size_after = header.size_bytes();
    }
    assert_eq!(size_after, rebuilt.len(), "the rebuilt batch's length field covers exactly its bytes");
    let crc = crc32c::crc32c(&rebuilt[CRC_START..]);
    if let Ok((header, _)) = RecordBatchHeader::mut_from_prefix(rebuilt) {
        header.crc.set(crc);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression as KafkaCompression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn kafka_codec(codec: Compression) -> KafkaCompression {
        match codec {
            Compression::None => KafkaCompression::None,
            Compression::Gzip => KafkaCompression::Gzip,
            Compression::Snappy => KafkaCompression::Snappy,
            Compression::Lz4 => KafkaCompression::Lz4,
            Compression::Zstd => KafkaCompression::Zstd,
        }
    }

    fn records() -> Vec<Record> {
        (0..50)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 4000,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 17 + i as i32,
                timestamp: 1_700_000_000_000 + i * 7,
                key: (i % 3 != 0).then(|| format!("key-{i}").into()),
                value: Some(format!("value {i} ").repeat(40).into()),
                headers: [(format!("h{i}").into(), Some(bytes::Bytes::from_static(b"v")))].into_iter().collect(),
            })
            .collect()
    }

    fn encoded(codec: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: kafka_codec(codec) };
        RecordBatchEncoder::encode(&mut buf, &records(), &options).unwrap();
        buf.to_vec()
    }

    #[test]
    fn every_codec_recompresses_to_every_codec() {
        for from in CODECS {
            let input = encoded(from);
            let input_header = batch::validate(&input, usize::MAX).unwrap();
            for to in CODECS {
                let mut output = Vec::new();
                recompress(&input, to, DECOMPRESSED_BYTES_MAX, &mut output).unwrap();
                let header = batch::validate(&output, usize::MAX).unwrap();
                assert_eq!(header.compression(), Some(to), "{from:?} -> {to:?}");
                for (a, b) in [
                    (header.records_count.get() as i64, input_header.records_count.get() as i64),
                    (header.last_offset_delta.get() as i64, input_header.last_offset_delta.get() as i64),
                    (header.base_timestamp.get(), input_header.base_timestamp.get()),
                    (header.max_timestamp.get(), input_header.max_timestamp.get()),
                    (header.producer_id.get(), input_header.producer_id.get()),
                    (header.producer_epoch.get() as i64, input_header.producer_epoch.get() as i64),
                    (header.base_sequence.get() as i64, input_header.base_sequence.get() as i64),
                ] {
                    assert_eq!(a, b, "{from:?} -> {to:?}");
                }
                // An independent decoder (the Kafka codec crate) reads the same records back.
                let mut bytes = bytes::Bytes::from(output);
                let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
                assert_eq!(decoded.records, records(), "{from:?} -> {to:?}");
                if from == to {
                    continue;
                }
                assert_ne!(decoded.compression, kafka_codec(from));
            }
        }
    }

    #[test]
    fn librdkafka_raw_snappy_is_read() {
        let data = b"records ".repeat(1000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, DECOMPRESSED_BYTES_MAX).unwrap(), data);
        let mut xerial = Vec::new();
        compress(Compression::Snappy, &data, &mut xerial);
        assert!(xerial.starts_with(XERIAL_MAGIC));
        assert_eq!(decompress(Compression::Snappy, &xerial, DECOMPRESSED_BYTES_MAX).unwrap(), data);
    }

    #[test]
    fn a_compression_bomb_is_refused_at_the_limit() {
        // 1 MiB + 1 of zeros compresses to a few KiB in every codec; the limit is one byte short of it.
        let limit = 1 << 20;
        let zeros = vec![0u8; limit + 1];
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let mut bomb = Vec::new();
            compress(codec, &zeros, &mut bomb);
            assert!(bomb.len() < limit / 10, "{codec:?}: {} bytes", bomb.len());
            assert_eq!(
                decompress(codec, &bomb, limit),
                Err(BatchError::DecompressedTooLarge { codec: codec.name(), max_bytes: limit }),
                "{codec:?}"
            );
            assert_eq!(decompress(codec, &bomb, limit + 1).unwrap().len(), limit + 1, "{codec:?}");
        }
        // A raw snappy block declaring 4 GiB is refused before anything is allocated for it.
        // Its length is an unsigned varint: 0xffffffff in five bytes.
        let mut claim = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        claim.extend_from_slice(&[0; 16]);
        assert_eq!(
            decompress(Compression::Snappy, &claim, limit),
            Err(BatchError::DecompressedTooLarge { codec: "snappy", max_bytes: limit })
        );
    }

    #[test]
    fn garbage_and_wrong_counts_are_refused() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
            let garbage = [0x5au8; 64];
            assert!(
                matches!(decompress(codec, &garbage, DECOMPRESSED_BYTES_MAX), Err(BatchError::Decompress { .. })),
                "{codec:?}"
            );
        }
        // A batch whose header claims one record more than its records hold.
        let mut input = encoded(Compression::Gzip);
        let header = batch::peek_header(&input).unwrap();
        let mut fixed = header;
        fixed.records_count.set(header.records_count.get() + 1);
        fixed.last_offset_delta.set(header.last_offset_delta.get() + 1);
        input[..HEADER_BYTES].copy_from_slice(zerocopy::IntoBytes::as_bytes(&fixed));
        let mut output = b"kept".to_vec();
        assert_eq!(
            recompress(&input, Compression::Zstd, DECOMPRESSED_BYTES_MAX, &mut output),
            Err(BatchError::Invalid { reason: "the decompressed records do not match the batch's record count" })
        );
        assert_eq!(output, b"kept");
    }
}
