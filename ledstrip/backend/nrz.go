package backend

// NRZ over SPI at 2.5 MHz: each data bit becomes four SPI bits of 400 ns,
// 1000 for a 0 (400 ns high) and 1110 for a 1 (1.2 µs high), so one colour
// byte is four SPI bytes. These are the symbols periph's nrzled uses.
const (
	nrzPad = 3 // zero bytes before and after: the line must idle low
)

var nrzTable = func() (t [256][4]byte) {
	for v := range 256 {
		for i := range 4 {
			hi := (v >> (7 - 2*i)) & 1
			lo := (v >> (6 - 2*i)) & 1
			t[v][i] = nibble(hi)<<4 | nibble(lo)
		}
	}
	return t
}()

func nibble(bit int) byte {
	if bit == 1 {
		return 0xE
	}
	return 0x8
}

// frameLen is the SPI transfer size for n LEDs of ch channels.
func frameLen(n, ch int) int { return nrzPad + 4*ch*n + nrzPad }

// encodeNRZ writes bytes (already in wire order, ch per LED) into buf,
// which is frameLen long, padding included.
func encodeNRZ(buf, bytes []byte) {
	clear(buf[:nrzPad])
	clear(buf[len(buf)-nrzPad:])
	d := buf[nrzPad:]
	for i, v := range bytes {
		copy(d[4*i:4*i+4], nrzTable[v][:])
	}
}
