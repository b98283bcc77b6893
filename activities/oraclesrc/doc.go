// Package oraclesrc is Bulwark's Oracle source. One half needs no database and is unit-tested:
// the row format of logical table exports, the table digest, schema.json, the SQL and PL/SQL text
// Bulwark sends, the splitting of DBMS_METADATA output into statements, the restore order of
// schema objects, the conversion of query text back into values and the array-bind batches for
// go-ora. The other half talks to a live Oracle through go-ora (session.go, export.go,
// restore.go, datapump.go, rman.go) and is exercised only by integration/oracle_test.go, which
// needs Docker.
//
// # Row format, version 1
//
// One row stream holds the rows of one table (or one part of it): a header describing the
// columns, the rows, and a trailer. A stream is written by Encoder and read by Decoder; it is
// the plaintext that the repository chunks and encrypts (FORMAT.md), so it carries no checksum of
// its own. Integers are Go's encoding/binary varints: "uvarint" is unsigned LEB128, "varint" is
// zig-zag signed. Lengths are uvarints; text is UTF-8 as the driver delivers it, never
// re-encoded.
//
//	stream  = header row* trailer
//	header  = "BWORAROW" version:byte(1) ncols:uvarint(1..4096) column*ncols
//	column  = name:uvarint-len+bytes(1..128) type:byte flags:byte
//	          precision:varint scale:varint length:uvarint
//	          flags: 1 char semantics, 2 scale present, 4 nullable
//	row     = 'R' value*ncols
//	value   = 0x00                     NULL
//	        | 0x01 payload             a value, payload by column type
//	trailer = 'E' rows:uvarint         the number of rows written; nothing may follow
//
// Payloads (type byte in parentheses):
//
//	NUMBER (1)          uvarint-len canonical decimal text (CanonicalNumber): "-12.5", "0",
//	                    "0.000…01"; no exponent, no "-0", at most 20 base-100 digits,
//	                    1E-130 <= |v| < 1E126
//	BINARY_FLOAT (2)    4 bytes big-endian IEEE 754 bits (NaN payload, ±Inf, -0 kept)
//	BINARY_DOUBLE (3)   8 bytes big-endian IEEE 754 bits
//	DATE (4)            datetime without nanoseconds
//	TIMESTAMP (5)       datetime nanos:uvarint(0..999999999)
//	TIMESTAMP WITH TIME ZONE (6)
//	                    the instant as UTC datetime + nanos, then zone: uvarint-len text
//	                    (1..64) exactly as TZR printed it: "Europe/London" stays a region,
//	                    "+01:00" stays an offset
//	TIMESTAMP WITH LOCAL TIME ZONE (7)
//	                    the instant as UTC datetime + nanos
//	INTERVAL YEAR TO MONTH (8)  months:varint
//	INTERVAL DAY TO SECOND (9)  days:varint nanos:varint (same sign, |nanos| < 1 day)
//	VARCHAR2, NVARCHAR2, CHAR, NCHAR (10..13)   uvarint-len bytes (CHAR keeps its padding)
//	RAW (14)            uvarint-len bytes
//	ROWID/UROWID (15)   uvarint-len printable ASCII text (CAST AS VARCHAR2)
//	CLOB, NCLOB (16, 17), BLOB (18)
//	                    piece* 0x00, piece = len:uvarint(1..1 MiB) bytes; an empty LOB is
//	                    the terminator alone
//	datetime            year:varint(-4712..9999, not 0) month day hour minute second: one
//	                    byte each, Oracle's civil fields (Julian before 1582-10-15)
//
// Inline values (text, RAW) are at most 1 MiB; a decoder never holds more than that, or one LOB
// piece, in memory.
//
// NULL and empty: a value is NULL only when its tag is 0x00. Oracle stores the empty string in VARCHAR2, CHAR
// and RAW as NULL, so a database never yields an empty one; if a caller passes one it is kept as
// empty. For CLOB, NCLOB and BLOB, EMPTY_CLOB()/EMPTY_BLOB() is a real value distinct from NULL:
// it is tag 0x01 followed by the terminator, and restore binds an empty LOB, not NULL.
//
// Changes: a new type takes a new type byte; anything else that changes the layout takes a new
// version byte, and decoders keep reading every older version.
//
// # Not yet verified against a live database
//
// None of this has met an Oracle server (none can run where it was written).
// To check first, with go-ora and gvenzl/oracle-free: that array binds
// accept the sql.Null* slices Batcher produces and []go_ora.Clob/Blob for
// LOB columns; that named binds (sql.Named) reach the right placeholders in
// the catalog queries and PL/SQL blocks; that an empty CLOB fetched inline
// arrives as "" and not NULL, and whether an empty CLOB or BLOB binds as
// EMPTY_CLOB()/EMPTY_BLOB() (go-ora v2.9.0 appears to bind a zero-length LOB
// as NULL: the restore's digest check would then report the table, and
// empty LOBs need an EMPTY_*() expression in the INSERT); that DBMS_METADATA runs in the pinned session
// with the transforms set; that a BFILE reads the dump at 0-based offsets;
// that a BINARY_FLOAT NaN binds; that "AT TIME ZONE :zone" takes a
// bind; that TO_CHAR(n, 'TM9') and implicit conversion handle NUMBER values
// of 40 digits and at the ends of the range; that the DBMS_METADATA
// transform EMIT_SCHEMA exists on the oldest version supported; and that
// ALTER SEQUENCE ... RESTART START WITH behaves as documented from 18c.
package oraclesrc
