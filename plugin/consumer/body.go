package consumer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// BufferedBody is a response body read into memory for a JSON answer:
// as text when it is UTF-8, else as base64.
type BufferedBody struct {
	Text, Base64 *string
	Bytes        int
	Truncated    bool
}

// ReadBody reads up to limit bytes of the body. On a read error it
// returns what it read and the error.
func (r *Response) ReadBody(limit int64) (BufferedBody, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	var out BufferedBody
	if int64(len(b)) > limit {
		b, out.Truncated = b[:limit], true
	}
	out.Bytes = len(b)
	if utf8.Valid(b) {
		s := string(b)
		out.Text = &s
	} else {
		s := base64.StdEncoding.EncodeToString(b)
		out.Base64 = &s
	}
	return out, err
}

// deadlineBody is a response body with a total deadline and an idle
// timeout: past either, the request's context is cancelled (which closes
// the connection) and reads fail with ErrBodyTimeout. A target that
// trickles its body, or stops sending it, cannot hold an access, a
// goroutine and a connection for ever.
type deadlineBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	idle   time.Duration
	idleT  *time.Timer
	totalT *time.Timer
}

func newDeadlineBody(ctx context.Context, cancel context.CancelCauseFunc, rc io.ReadCloser, total, idle time.Duration) *deadlineBody {
	b := &deadlineBody{rc: rc, ctx: ctx, cancel: cancel, idle: idle}
	b.totalT = time.AfterFunc(total, func() {
		cancel(fmt.Errorf("%w: the body took longer than %s (--consumer.body-timeout)", ErrBodyTimeout, total))
	})
	b.idleT = time.AfterFunc(idle, func() {
		cancel(fmt.Errorf("%w: no bytes of the body for %s (--consumer.body-idle-timeout)", ErrBodyTimeout, idle))
	})
	return b
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.idleT.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, ErrBodyTimeout) {
			err = cause
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	b.idleT.Stop()
	b.totalT.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}
