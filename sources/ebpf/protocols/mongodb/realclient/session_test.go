package realclient

import (
	"context"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// want is a row a session should make: the command, the reply's status,
// and patterns the whole of the command's and the reply's bodies match.
type want struct {
	cmd, status string
	req, resp   string // regular expressions
}

var lit = regexp.QuoteMeta

// handshake is the row of the legacy isMaster (OP_QUERY) with which the
// driver begins each connection, and FerretDB's OP_REPLY.
var handshake = want{
	cmd: "isMaster", status: "ok: 1",
	req: lit(`{"isMaster":1,"helloOk":true,"compression":[],"client":{"application":{"name":"pxq-realclient"},"driver":{"name":"mongo-go-driver","version":"1.17.10"},"os":{"type":"linux","architecture":"`) +
		`[a-z0-9]+` + lit(`"},"platform":"go`) + `[0-9.]+"(,"env":.*)?` + lit(`}}`),
	resp: lit(`{"helloOk":true,"ismaster":true,"maxBsonObjectSize":16777216,"maxMessageSizeBytes":48000000,"maxWriteBatchSize":100000,"localTime":{"$date":"`) +
		`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z` + lit(`"},"logicalSessionTimeoutMinutes":30,"connectionId":`) + `[0-9]+` +
		lit(`,"minWireVersion":0,"maxWireVersion":21,"readOnly":false,"ok":1.0}`),
}

// session is what the driver does on its connection: insertMany, a find
// with a filter read in batches (getMore), an update, a delete, an
// aggregate, an insert the server refuses (a duplicate key) and a
// command it does not know, all in one explicit session, in the
// database db; and it returns the rows of that connection, its
// handshake first.
func session(t *testing.T, addr, db string) []want {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One connection for the commands (and the monitor's own, which only
	// shakes hands: its next check would be in an hour).
	opts := options.Client().ApplyURI("mongodb://" + addr + "/").SetDirect(true).
		SetMaxPoolSize(1).SetHeartbeatInterval(time.Hour).SetAppName("pxq-realclient")
	cl, err := mongo.Connect(ctx, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sess, err := cl.StartSession()
	must(err)
	sctx := mongo.NewSessionContext(ctx, sess)
	var id primitive.Binary
	must(sess.ID().Lookup("id").Unmarshal(&id))
	lsid := lit(`"lsid":{"id":{"$binary":{"base64":"` + base64.StdEncoding.EncodeToString(id.Data) + `","subType":"04"}}},`)

	items := cl.Database(db).Collection("items")
	oid, _ := primitive.ObjectIDFromHex("65a1b2c3d4e5f60718293a4b")
	at := time.Date(2024, 1, 2, 3, 4, 5, 678e6, time.UTC)
	var docs []any
	item := func(i int) string {
		return `{"_id":` + strconv.Itoa(i) + `,"name":"` + string(rune('a'+i-1)) + `","qty":` + strconv.Itoa(10*i) +
			`,"ref":{"$oid":"65a1b2c3d4e5f60718293a4b"},"at":{"$date":"2024-01-02T03:04:05.678Z"}}`
	}
	for i := 1; i <= 5; i++ {
		docs = append(docs, doc("_id", i, "name", string(rune('a'+i-1)), "qty", int64(10*i), "ref", oid, "at", at))
	}
	_, err = items.InsertMany(sctx, docs)
	must(err)
	cur, err := items.Find(sctx, doc("qty", doc("$gte", 20)), options.Find().SetBatchSize(2).SetSort(doc("_id", 1)))
	must(err)
	cursor := strconv.FormatInt(cur.ID(), 10)
	var got []bson.M
	must(cur.All(sctx, &got))
	if len(got) != 4 {
		t.Fatalf("find: %d documents, want 4", len(got))
	}
	_, err = items.UpdateOne(sctx, doc("_id", 2), doc("$set", doc("name", "b2")))
	must(err)
	_, err = items.DeleteOne(sctx, doc("_id", 3))
	must(err)
	agg, err := items.Aggregate(sctx, mongo.Pipeline{doc("$match", doc("qty", doc("$gte", 20))), doc("$count", "n")})
	must(err)
	must(agg.All(sctx, &got))
	if len(got) != 1 || got[0]["n"] != int32(3) {
		t.Fatalf("aggregate: %v", got)
	}
	if _, err := items.InsertOne(sctx, doc("_id", 1)); !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("duplicate insert: %v", err)
	}
	if err := cl.Database(db).RunCommand(sctx, doc("nosuchcmd", 1)).Err(); err == nil {
		t.Fatal("an unknown command did not fail")
	}
	sess.EndSession(ctx)
	must(cl.Disconnect(ctx))

	getMore := lit(`{"getMore":`+cursor+`,"collection":"items","batchSize":2,`) + lsid + lit(`"$db":"pxq"}`)
	notFound := func(cmd string) string {
		return lit(`{"ok":0.0,"errmsg":"no such command: '` + cmd + `'","code":59,"codeName":"CommandNotFound"}`)
	}
	wants := []want{
		handshake,
		{"insert", "ok: 1", lit(`{"insert":"items","ordered":true,`) + lsid + lit(`"$db":"pxq","documents":[`+item(1)+`,`+item(2)+`,`+item(3)+`,`+item(4)+`,`+item(5)+`]}`),
			lit(`{"n":5,"ok":1.0}`)},
		{"find", "cursor", lit(`{"find":"items","batchSize":2,"filter":{"qty":{"$gte":20}},"sort":{"_id":1},`) + lsid + lit(`"$db":"pxq"}`),
			lit(`{"cursor":{"firstBatch":[` + item(2) + `,` + item(3) + `],"id":` + cursor + `,"ns":"pxq.items"},"ok":1.0}`)},
		{"getMore", "cursor", getMore, lit(`{"cursor":{"nextBatch":[` + item(4) + `,` + item(5) + `],"id":` + cursor + `,"ns":"pxq.items"},"ok":1.0}`)},
		{"getMore", "cursor", getMore, lit(`{"cursor":{"nextBatch":[],"id":0,"ns":"pxq.items"},"ok":1.0}`)},
		{"update", "ok: 1", lit(`{"update":"items","ordered":true,`) + lsid + lit(`"$db":"pxq","updates":[{"q":{"_id":2},"u":{"$set":{"name":"b2"}}}]}`),
			lit(`{"n":1,"nModified":1,"ok":1.0}`)},
		{"delete", "ok: 1", lit(`{"delete":"items","ordered":true,`) + lsid + lit(`"$db":"pxq","deletes":[{"q":{"_id":3},"limit":1}]}`),
			lit(`{"n":1,"ok":1.0}`)},
		{"aggregate", "cursor", lit(`{"aggregate":"items","pipeline":[{"$match":{"qty":{"$gte":20}}},{"$count":"n"}],"cursor":{},`) + lsid + lit(`"$db":"pxq"}`),
			lit(`{"cursor":{"firstBatch":[{"n":3}],"id":0,"ns":"pxq.items"},"ok":1.0}`)},
		{"insert", "ok: 1", lit(`{"insert":"items","ordered":true,`) + lsid + lit(`"$db":"pxq","documents":[{"_id":1}]}`),
			lit(`{"n":0,"writeErrors":[{"index":0,"code":11000,"errmsg":"E11000 duplicate key error collection: pxq.items"}],"ok":1.0}`)},
		{"nosuchcmd", "ok: 0", lit(`{"nosuchcmd":1,`) + lsid + lit(`"$db":"pxq"}`), notFound("nosuchcmd")},
		// FerretDB 1.24 does not know endSessions, which Disconnect sends.
		{"endSessions", "ok: 0", lit(`{"endSessions":[{"id":{"$binary":{"base64":"` + base64.StdEncoding.EncodeToString(id.Data) + `","subType":"04"}}}],"$db":"admin"}`),
			notFound("endSessions")},
	}
	// The rows were written for the database pxq.
	for i := range wants[1:] {
		w := &wants[i+1]
		for _, re := range []*string{&w.req, &w.resp} {
			*re = strings.ReplaceAll(*re, `"pxq"`, `"`+db+`"`)
			*re = strings.ReplaceAll(*re, lit(`pxq.items`), lit(db+`.items`))
		}
	}
	return wants
}

// bigSession inserts a document of 300 kB and reads it back, in the
// database db: the driver writes the insert in one call, past the 64 KiB
// the tracer copies of a call, and FerretDB the reply. Each row keeps
// the prefix of its body that was kept, cut within its bound and marked.
func bigSession(t *testing.T, addr, db string) []want {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := options.Client().ApplyURI("mongodb://" + addr + "/").SetDirect(true).
		SetMaxPoolSize(1).SetHeartbeatInterval(time.Hour).SetAppName("pxq-realclient")
	cl, err := mongo.Connect(ctx, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	blob := strings.Repeat("x", 300_000)
	big := cl.Database(db).Collection("big")
	if _, err := big.InsertOne(ctx, doc("_id", 1, "blob", blob)); err != nil {
		t.Fatal(err)
	}
	var got bson.M
	if err := big.FindOne(ctx, doc("_id", 1)).Decode(&got); err != nil || got["blob"] != blob {
		t.Fatalf("findOne: %v", err)
	}
	if err := cl.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	lsid := `"lsid":\{"id":\{"\$binary":\{"base64":"[A-Za-z0-9+/]{22}==","subType":"04"\}\}\},`
	return []want{
		handshake,
		{"insert", "ok: 1", lit(`{"insert":"big","ordered":true,`) + lsid + lit(`"$db":"`+db+`","documents":[{"_id":1,"blob":"`) + `x+` + lit(`"}],"$truncated":true}`),
			lit(`{"n":1,"ok":1.0}`)},
		{"find", "cursor", lit(`{"find":"big","filter":{"_id":1},"limit":1,"singleBatch":true,`) + lsid + lit(`"$db":"`+db+`"}`),
			lit(`{"cursor":{"firstBatch":[{"_id":1,"blob":"`) + `x+` + lit(`"}]},"$truncated":true}`)},
		{"endSessions", "ok: 0", lit(`{"endSessions":[{"id":{"$binary":{"base64":"`) + `[A-Za-z0-9+/]{22}==` + lit(`","subType":"04"}}}],"$db":"admin"}`),
			lit(`{"ok":0.0,"errmsg":"no such command: 'endSessions'","code":59,"codeName":"CommandNotFound"}`)},
	}
}

// helloHandshake is the handshake of a client of the stable API: an
// OP_MSG hello, with its apiVersion.
var helloHandshake = want{
	cmd: "hello", status: "ok: 1",
	req: lit(`{"hello":1,"helloOk":true,"compression":[],"client":{"driver":{"name":"mongo-go-driver","version":"1.17.10"},"os":{"type":"linux","architecture":"`) +
		`[a-z0-9]+` + lit(`"},"platform":"go`) + `[0-9.]+"(,"env":.*)?` + lit(`},"apiVersion":"1","$db":"admin","$readPreference":{"mode":"primaryPreferred"}}`),
	resp: lit(`{"isWritablePrimary":true,"maxBsonObjectSize":16777216,"maxMessageSizeBytes":48000000,"maxWriteBatchSize":100000,"localTime":{"$date":"`) +
		`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z` + lit(`"},"logicalSessionTimeoutMinutes":30,"connectionId":`) + `[0-9]+` +
		lit(`,"minWireVersion":0,"maxWireVersion":21,"readOnly":false,"ok":1.0}`),
}

// apiSession is a client of the stable API (version 1): it shakes hands
// with an OP_MSG hello, not the legacy OP_QUERY, and its commands carry
// their apiVersion. It inserts a document.
func apiSession(t *testing.T, addr string) []want {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := options.Client().ApplyURI("mongodb://" + addr + "/").SetDirect(true).SetMaxPoolSize(1).
		SetHeartbeatInterval(time.Hour).SetServerAPIOptions(options.ServerAPI(options.ServerAPIVersion1))
	cl, err := mongo.Connect(ctx, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if _, err := cl.Database("pxq_api").Collection("items").InsertOne(ctx, doc("_id", "k", "v", 1.5)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	lsid := `"lsid":\{"id":\{"\$binary":\{"base64":"[A-Za-z0-9+/]{22}==","subType":"04"\}\}\},`
	return []want{
		helloHandshake,
		{"insert", "ok: 1", lit(`{"insert":"items","ordered":true,`) + lsid + lit(`"apiVersion":"1","$db":"pxq_api","documents":[{"_id":"k","v":1.5}]}`),
			lit(`{"n":1,"ok":1.0}`)},
		{"endSessions", "ok: 0", lit(`{"endSessions":[{"id":{"$binary":{"base64":"`) + `[A-Za-z0-9+/]{22}==` + lit(`","subType":"04"}}}],"apiVersion":"1","$db":"admin"}`),
			lit(`{"ok":0.0,"errmsg":"no such command: 'endSessions'","code":59,"codeName":"CommandNotFound"}`)},
	}
}
