// Package backup takes encrypted, streaming database backups: build a
// Runner with your Sources (PostgresSource, RedisSource, MySQLSource), a
// Store (backup/b2store for Backblaze B2, backup/filestore for a
// directory), the age public keys to encrypt to and a Notifier, and call
// Run every 4 hours (Units renders the systemd timer).
//
// Each source streams through one pipeline with no temporary file:
//
//	dump tool → zstd → age (to every recipient) → sha256 → Store.Put
//
// Memory stays bounded whatever the database size (a few MiB for zstd and
// age, up to 4 MiB of dump read ahead, plus the store's part buffers). The
// dump tool runs under coreutils' stdbuf, when present, so that it writes
// 1 MiB at a time instead of 4 KiB. A backup is two objects,
// <prefix><source>/<ID>.<ext>.zst.age and <prefix><source>/<ID>.manifest.json;
// the manifest (source, sizes, sha256, tool versions, start and end,
// recipients) is written after the data, so a backup is listed (Scan) only
// when it is complete, and a failed run leaves nothing listed and no
// unfinished upload.
//
// After a source's backup succeeded, Prune applies the Retention (keep 14
// days, never fewer than the newest KeepLast backups of each source).
// Restore streams a backup back (download, sha256, age decrypt with the
// private identity, zstd) into a Target: pg_restore, an RDB file, the
// mariadb client. PostgresVerify and MySQLVerify are the restore drills:
// restore into a scratch database, compare the largest tables' row counts
// with the source, drop the scratch database; RedisVerify restores the RDB
// to a scratch file, checks it with redis-check-rdb and compares key
// counts.
//
// Secrets never reach argv or logs: pg_dump gets PGPASSWORD, redis-cli
// REDISCLI_AUTH, mysqldump MYSQL_PWD, and errors carry no passwords, keys or
// webhook URLs. Lock keeps two runs from overlapping.
package backup
