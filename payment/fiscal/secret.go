package fiscal

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ReadSecret reads a credential (the cloud kassa's password, the web
// server's Basic password) from the first line of a file. It refuses a
// file that group or others may read, as the Smart Pay key files are. The
// value must never be logged.
func ReadSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("fiscal: secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("fiscal: secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("fiscal: secret file %s has mode %04o: group/others may read it; run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("fiscal: secret file %s is empty", path)
	}
	s := strings.TrimRight(line, "\r\n")
	if s == "" {
		return "", fmt.Errorf("fiscal: secret file %s: the first line is empty", path)
	}
	return s, nil
}
