package amqp

import "testing"

// TestMethodTable checks the method table against itself: names are
// unique, every answer is a method of the same class that its asker's
// other side sends, every no-wait bit is a bit, and only basic's
// publish, return, deliver and get-ok carry content.
func TestMethodTable(t *testing.T) {
	names := map[string]uint32{}
	for k, d := range methods {
		class, id := uint16(k>>16), uint16(k)
		if prev, ok := names[d.name]; ok {
			t.Errorf("%s is %d.%d and %d.%d", d.name, prev>>16, uint16(prev), class, id)
		}
		names[d.name] = k
		for _, a := range d.answers {
			ans := methods[key(class, a)]
			if ans == nil {
				t.Errorf("%s: answer %d.%d is not a method", d.name, class, a)
				continue
			}
			if d.from != byBoth && ans.from&d.from != 0 && ans.from != byBoth {
				t.Errorf("%s is answered by %s, sent by the same side", d.name, ans.name)
			}
		}
		if d.noWait >= 0 && d.args[d.noWait].typ != tBit {
			t.Errorf("%s: no_wait is not a bit", d.name)
		}
		if d.content != (class == 60 && (id == 40 || id == 50 || id == 60 || id == 71)) {
			t.Errorf("%s: content %v", d.name, d.content)
		}
	}
	if len(methods) != 64 { // connection 14, channel 6, exchange 8, queue 10, basic 18, confirm 2, tx 6
		t.Errorf("%d methods", len(methods))
	}
}
