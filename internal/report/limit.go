package report

import "io"

// recordLimiter passes the bytes of a CSV file through and fails once one
// row (a record: up to a line feed outside double quotes) grows past
// maxRecordBytes, so that the CSV reader never buffers more than that for a
// row. It follows quoting by toggling on every '"', which stays right for
// the doubled quotes of a quoted field; a stray quote in an unquoted field,
// which could mislead it, is a syntax error the CSV reader reports anyway.
type recordLimiter struct {
	r       io.Reader
	line    int // physical line of the next byte, 1-based
	start   int // line on which the current record started
	n       int // bytes of the current record so far
	inQuote bool
	err     error
}

// recordTooLongError is the error of a record past maxRecordBytes.
type recordTooLongError struct{ line int }

func (e *recordTooLongError) Error() string { return "row too long" }

// Read implements io.Reader.
func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for i, c := range p[:n] {
		if l.n++; l.n > maxRecordBytes {
			l.err = &recordTooLongError{line: l.start}
			return i, l.err
		}
		switch c {
		case '"':
			l.inQuote = !l.inQuote
		case '\n':
			l.line++
			if !l.inQuote {
				l.n, l.start = 0, l.line
			}
		}
	}
	return n, err
}
