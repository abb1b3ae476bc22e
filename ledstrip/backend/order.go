package backend

// wireOrder maps wire position to channel: 0 red, 1 green, 2 blue, 3 white.
type wireOrder []int

func newWireOrder(order string, rgbw bool) wireOrder {
	w := make(wireOrder, 0, 4)
	for _, c := range order {
		switch c {
		case 'R':
			w = append(w, 0)
		case 'G':
			w = append(w, 1)
		case 'B':
			w = append(w, 2)
		}
	}
	if rgbw {
		w = append(w, 3)
	}
	return w
}

// put writes px as wire bytes into dst (len(px)*len(w) long).
func (w wireOrder) put(dst []byte, px []pixel) {
	k := 0
	for _, p := range px {
		ch := [4]uint8{p.r, p.g, p.b, p.w}
		for _, c := range w {
			dst[k] = ch[c]
			k++
		}
	}
}
