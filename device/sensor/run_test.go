package sensor

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type fakeReader struct {
	mu   sync.Mutex
	fail bool
}

func (f *fakeReader) String() string { return "fake" }
func (f *fakeReader) Read(context.Context) (float64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, errors.New("bus error")
	}
	return 12.34, nil
}

func TestRunSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble starts at midnight 2000-01-01 UTC: 5-minute marks
		// and full hours coincide, so 65 minutes give 14 readings
		// (one at start, 13 marks).
		r := &fakeReader{}
		var mu sync.Mutex
		var got []string
		var errs int
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			Run(ctx, r, func(_ context.Context, p []byte) error {
				mu.Lock()
				got = append(got, string(p))
				mu.Unlock()
				return nil
			}, slog.New(slog.DiscardHandler), func(err error) {
				if err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			})
			close(done)
		}()
		time.Sleep(65*time.Minute + time.Second)
		synctest.Wait()
		mu.Lock()
		if len(got) != 14 || got[0] != `{"temp_c":12.3}` {
			t.Errorf("got %d readings %v, want 14 of {\"temp_c\":12.3}", len(got), got)
		}
		mu.Unlock()
		// A failing sensor is reported and the loop goes on.
		r.mu.Lock()
		r.fail = true
		r.mu.Unlock()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		mu.Lock()
		if errs != 2 || len(got) != 14 {
			t.Errorf("got %d errors and %d readings, want 2 and 14", errs, len(got))
		}
		mu.Unlock()
		cancel()
		<-done
	})
}
