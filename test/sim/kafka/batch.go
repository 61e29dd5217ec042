package kafka

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A sparse batch is a Kafka v2 record batch whose header claims n records
// while its records section is empty. It is how a fluid volume of records
// reaches the broker at O(1) cost.
//
// kfake's produce path (00_produce.go) reads only the batch header
// (kmsg.RecordBatch.ReadFrom) and checks: the request's partition holds one
// batch whose Length is len(bytes)-12; FirstOffset is 0; Magic is 2; the
// CRC-32C (Castagnoli) over bytes [21:] matches; the attributes are not a
// control batch and name a known codec; LastOffsetDelta is NumRecords-1; a
// ProducerID of -1 skips the idempotence checks. It never decodes the
// records, and it advances the high watermark by NumRecords. A real Kafka
// broker decodes every record and would reject such a batch.
//
// Nobody can fetch a sparse batch: a consumer that tries gets an error from
// its client (franz-go: "claimed records with no record bytes"), which is
// louder than silently skipping offsets.

const (
	// batchHeaderLen is the v2 record batch header, FirstOffset through
	// NumRecords.
	batchHeaderLen = 61
	// crcStart is where the CRC-covered bytes begin (Attributes).
	crcStart = 21
	// crcOffset is where the CRC field sits.
	crcOffset = 17
	// maxBatchRecords is the most records one batch header can claim.
	maxBatchRecords = 1<<31 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendSparseBatch appends a sparse batch claiming n records (1 ≤ n ≤
// maxBatchRecords), stamped with the wall-clock millisecond ts, to dst.
func appendSparseBatch(dst []byte, n int32, ts int64) []byte {
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               batchHeaderLen - 12,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           0, // no compression, create time, not transactional
		LastOffsetDelta:      n - 1,
		FirstTimestamp:       ts,
		MaxTimestamp:         ts,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           n,
	}
	start := len(dst)
	dst = b.AppendTo(dst)
	batch := dst[start:]
	binary.BigEndian.PutUint32(batch[crcOffset:], crc32.Checksum(batch[crcStart:], castagnoli))
	return dst
}
