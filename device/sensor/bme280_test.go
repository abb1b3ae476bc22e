package sensor

import (
	"context"
	"math"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
)

// Transactions recorded from a BME280 at 0x76 (periph's own recording):
// probe, calibration, configuration, one forced conversion.
func recordedBME280() []i2ctest.IO {
	return []i2ctest.IO{
		{Addr: 0x76, W: []byte{0xd0}, R: []byte{0x60}},
		{Addr: 0x76, W: []byte{0x88}, R: []byte{0x10, 0x6e, 0x6c, 0x66, 0x32, 0x0, 0x5d, 0x95, 0xb8, 0xd5, 0xd0, 0xb, 0x77, 0x1e, 0x9d, 0xff, 0xf9, 0xff, 0xac, 0x26, 0xa, 0xd8, 0xbd, 0x10, 0x0, 0x4b}},
		{Addr: 0x76, W: []byte{0xe1}, R: []byte{0x6e, 0x1, 0x0, 0x13, 0x5, 0x0, 0x1e}},
		{Addr: 0x76, W: []byte{0xf4, 0x6c, 0xf2, 0x3, 0xf5, 0xa0, 0xf4, 0x6c}},
		{Addr: 0x76, W: []byte{0xf4, 0x6d}},
		{Addr: 0x76, W: []byte{0xf3}, R: []byte{8}},
		{Addr: 0x76, W: []byte{0xf3}, R: []byte{0}},
		{Addr: 0x76, W: []byte{0xf7}, R: []byte{0x4a, 0x52, 0xc0, 0x80, 0x96, 0xc0, 0x7a, 0x76}},
	}
}

func TestBME280(t *testing.T) {
	bus := &i2ctest.Playback{Ops: recordedBME280()}
	s, err := NewBME280(bus, 0x76)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 23.72 °C, as the datasheet's compensation gives for these raw values.
	if math.Abs(got-23.72) > 0.001 {
		t.Errorf("got %v °C, want 23.72", got)
	}
	if err := bus.Close(); err != nil {
		t.Errorf("not every recorded transaction was used: %v", err)
	}
}

func TestBME280Absent(t *testing.T) {
	// Nothing answers at 0x77: the probe reads a wrong chip id.
	bus := &i2ctest.Playback{Ops: []i2ctest.IO{{Addr: 0x77, W: []byte{0xd0}, R: []byte{0xff}}}, DontPanic: true}
	_, err := NewBME280(bus, 0x77)
	if err == nil || !strings.Contains(err.Error(), "i2cdetect") {
		t.Fatalf("got %v, want an error naming the fix", err)
	}
}

func TestBME280ReadFails(t *testing.T) {
	ops := recordedBME280()
	bus := &i2ctest.Playback{Ops: ops[:5], DontPanic: true}
	s, err := NewBME280(bus, 0x76)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background()); err == nil {
		t.Fatal("a sensor that stops answering must be an error, not a value")
	}
}
