package envfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// Dotenv is a release of the Ruby dotenv gem, whose rules Parse follows.
// Mastodon 4.3 and later read .env.production with dotenv 3, Mastodon 4.2
// and earlier with dotenv 2; Gemfile.lock, beside .env.production in a
// Mastodon checkout, names the version (see DotenvFromGemfileLock).
type Dotenv int

const (
	// DotenvAuto, the zero value, lets Read take the release from the
	// Gemfile.lock beside the file, and otherwise means Dotenv32.
	DotenvAuto Dotenv = iota

	// Dotenv32 is Ruby dotenv 3.2.0 (Mastodon 4.3 and later with a
	// current Gemfile.lock): $(command) runs before $NAME expansion.
	Dotenv32

	// Dotenv31 is Ruby dotenv 3.1.7 and 3.1.8: $NAME expansion before
	// $(command). Earlier 3.x releases differ in corners: 3.1.5 and 3.1.6
	// drop blank lines inside quoted values, 3.1.4 and earlier skip the
	// lines of keys that the environment sets.
	Dotenv31

	// Dotenv28 is Ruby dotenv 2.8.0 and 2.8.1 (Mastodon 4.0 to 4.2, and
	// dotenv 2.5 to 2.7 in earlier Mastodon releases, which differ in
	// corners).
	Dotenv28

	// Dotenv24 is Ruby dotenv 2.4.0 (Debian 12's ruby-dotenv, Mastodon
	// 2.4), which reads line by line: no value spans lines.
	Dotenv24
)

// String returns "Ruby dotenv 3.2" and the like.
func (d Dotenv) String() string {
	switch d {
	case DotenvAuto:
		return "Ruby dotenv (release from Gemfile.lock, else 3.2)"
	case Dotenv32:
		return "Ruby dotenv 3.2"
	case Dotenv31:
		return "Ruby dotenv 3.1"
	case Dotenv28:
		return "Ruby dotenv 2.8"
	case Dotenv24:
		return "Ruby dotenv 2.4"
	}
	return "Dotenv(" + strconv.Itoa(int(d)) + ")"
}

// v3 reports a 3.x release.
func (d Dotenv) v3() bool { return d == Dotenv31 || d == Dotenv32 }

// DotenvVersion returns the rules for a version of the dotenv gem, such
// as "3.1.8": 2.4 and earlier read as Dotenv24, 2.5 to 2.8 as Dotenv28,
// 3.0 and 3.1 as Dotenv31, 3.2 and later as Dotenv32. Versions before 2
// give an error.
func DotenvVersion(version string) (Dotenv, error) {
	m := versionPattern.FindStringSubmatch(version)
	if m == nil {
		return DotenvAuto, fmt.Errorf("dotenv version %q: %w", version, errBadVersion)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	switch {
	case major < 2:
		return DotenvAuto, fmt.Errorf("dotenv version %q: %w", version, errOldVersion)
	case major == 2 && minor <= 4:
		return Dotenv24, nil
	case major == 2:
		return Dotenv28, nil
	case major == 3 && minor <= 1:
		return Dotenv31, nil
	}
	return Dotenv32, nil
}

var (
	versionPattern = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.\d+)*(?:[.-][0-9A-Za-z.-]+)?$`)
	// lockDotenv is the gem's own line in the specs of Gemfile.lock.
	lockDotenv = regexp.MustCompile(`^ {4}dotenv \(([^)\s]+)\)\s*$`)

	errBadVersion = errors.New("not a version number")
	errOldVersion = errors.New("dotenv before 2.0 is not supported")
	// errNoDotenv is returned by DotenvFromGemfileLock for a lock file
	// without the dotenv gem.
	errNoDotenv = errors.New("no dotenv gem in Gemfile.lock")
)

// DotenvFromGemfileLock returns the rules and the version of the dotenv
// gem that a Gemfile.lock names (the line "    dotenv (3.1.8)" under
// specs), and an error when it names none.
func DotenvFromGemfileLock(data []byte) (Dotenv, string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if m := lockDotenv.FindSubmatch(sc.Bytes()); m != nil {
			d, err := DotenvVersion(string(m[1]))
			return d, string(m[1]), err
		}
	}
	if err := sc.Err(); err != nil {
		return DotenvAuto, "", err
	}
	return DotenvAuto, "", errNoDotenv
}

// lockBeside reads the Gemfile.lock in the directory of path. It returns
// DotenvAuto and no error when there is none, or when it names no dotenv
// gem.
func lockBeside(path string) (Dotenv, error) {
	lock := filepath.Join(filepath.Dir(path), "Gemfile.lock")
	data, err := os.ReadFile(lock)
	if errors.Is(err, fs.ErrNotExist) {
		return DotenvAuto, nil
	}
	if err != nil {
		return DotenvAuto, err
	}
	d, _, err := DotenvFromGemfileLock(data)
	if errors.Is(err, errNoDotenv) {
		return DotenvAuto, nil
	}
	if err != nil {
		return DotenvAuto, fmt.Errorf("%s: %w", lock, err)
	}
	return d, nil
}
