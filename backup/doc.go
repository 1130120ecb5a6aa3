// Package backup takes encrypted, streaming database backups: build a
// Runner with your Sources (backup/pgdump, backup/rdb, backup/mysqldump),
// a Store (backup/b2store for Backblaze B2, backup/filestore for a
// directory), a Sealer (backup/agezstd: zstd, then age to the admins'
// public keys) and Notifiers (LogNotifier, backup/slacknotify,
// backup/metricsnotify), and call Run every 4 hours (Units renders the
// systemd timer).
//
// This package is the core and imports nothing outside Go's standard
// library: the interfaces at its seams (Source, Store, Sealer, Unsealer,
// Target, Verifier, Notifier) and what works across them. Each source
// streams through one pipeline with no temporary file:
//
//	dump tool → Sealer (zstd → age) → sha256 → Store.Put
//
// Memory stays bounded whatever the database size (the sealer's and the
// store's buffers). A backup is two objects,
// <prefix><source>/<ID>.<ext><sealer's extension> and
// <prefix><source>/<ID>.manifest.json; the manifest (source, sizes,
// sha256, tool versions, start and end, recipients) is written after the
// data, so a backup is listed (Scan) only when it is complete, and a
// failed run leaves nothing listed and no unfinished upload.
//
// After a source's backup succeeded, Prune applies the Retention (keep 14
// days, never fewer than the newest KeepLast backups of each source).
// Restore streams a backup back (download, sha256, Unsealer, the dump)
// into a Target such as pg_restore; Check compares a stored object with
// its manifest without a private key; a Verifier runs a restore drill.
// Lock keeps two runs from overlapping.
//
// Errors name what failed once: a Store's errors name neither the store
// nor the object, and the operation that called it adds both, as in
// "restore db/postgres/20261126T000000Z.pgdump.zst.age: object does not
// exist". No error holds a password, key or webhook URL.
package backup
