package realclient

import (
	"go.mongodb.org/mongo-driver/bson"
	"math/big"
	"math/rand/v2"
)

// bigInt returns a random integer of up to 34 decimal digits, either sign.
func bigInt(rng *rand.Rand) *big.Int {
	n := new(big.Int).SetUint64(rng.Uint64())
	n.Mul(n, new(big.Int).SetUint64(rng.Uint64()>>rng.UintN(64)))
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(1+rng.IntN(34))), nil)
	n.Mod(n, limit)
	if rng.IntN(2) == 0 {
		n.Neg(n)
	}
	return n
}

// doc makes a document of alternating keys and values.
func doc(kv ...any) bson.D {
	d := make(bson.D, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}
