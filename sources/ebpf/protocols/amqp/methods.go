package amqp

// Argument types of methods, as the specification names its domains.
const (
	tBit       = 'b' // packed with the bits that follow it into octets
	tOctet     = 'o'
	tShort     = 's' // 16 bits
	tLong      = 'l' // 32 bits
	tLongLong  = 'L' // 64 bits
	tShortStr  = 'S' // a length octet and up to 255 bytes
	tLongStr   = 'X' // a 32-bit length and its bytes
	tTable     = 'T' // a field table
	tTimestamp = 't' // 64-bit seconds
)

// arg is one argument of a method. An argument without a name is
// reserved (a ticket, an obsolete field): read, not shown. A secret one
// (credentials) shows as "<hidden>".
type arg struct {
	name   string
	typ    byte
	secret bool
}

// sender says which side sends a method.
type sender uint8

const (
	byClient sender = 1 << iota
	byServer
	byBoth = byClient | byServer
)

// methodDef is a method of AMQP 0-9-1 (with RabbitMQ's extensions:
// exchange bindings, basic.nack, confirms, connection.blocked).
type methodDef struct {
	name string // class and method, as funcs' amqp_method_name writes them
	args []arg
	// answers are the method ids (same class) that answer this method
	// when it is synchronous; nil for an asynchronous method.
	answers []uint16
	// noWait is the index in args of the no-wait bit that makes a
	// synchronous method go unanswered, -1 if it has none.
	noWait  int
	content bool // a content header and body frames follow
	from    sender
}

func key(class, method uint16) uint32 { return uint32(class)<<16 | uint32(method) }

var (
	closeArgs = []arg{{"reply_code", tShort, false}, {"reply_text", tShortStr, false}, {"class_id", tShort, false}, {"method_id", tShort, false}}
	bindArgs  = []arg{{"", tShort, false}, {"destination", tShortStr, false}, {"source", tShortStr, false}, {"routing_key", tShortStr, false}, {"no_wait", tBit, false}, {"arguments", tTable, false}}
)

// methods are every method, by key(class, method).
var methods = map[uint32]*methodDef{}

// isAnswer holds the keys of the methods that answer another.
var isAnswer = map[uint32]bool{}

// def adds a method; answers are given after the arguments as method ids.
func def(class, id uint16, name string, from sender, args []arg, answers ...uint16) *methodDef {
	d := &methodDef{name: name, args: args, answers: answers, noWait: -1, from: from}
	for i, a := range args {
		if a.name == "no_wait" {
			d.noWait = i
		}
	}
	methods[key(class, id)] = d
	for _, a := range answers {
		isAnswer[key(class, a)] = true
	}
	return d
}

func init() {
	const c, s, b = byClient, byServer, byBoth
	// connection (10)
	def(10, 10, "ConnectionStart", s, []arg{{"version_major", tOctet, false}, {"version_minor", tOctet, false},
		{"server_properties", tTable, false}, {"mechanisms", tLongStr, false}, {"locales", tLongStr, false}}, 11)
	def(10, 11, "ConnectionStartOk", c, []arg{{"client_properties", tTable, false}, {"mechanism", tShortStr, false},
		{"response", tLongStr, true}, {"locale", tShortStr, false}})
	def(10, 20, "ConnectionSecure", s, []arg{{"challenge", tLongStr, true}}, 21)
	def(10, 21, "ConnectionSecureOk", c, []arg{{"response", tLongStr, true}})
	tune := []arg{{"channel_max", tShort, false}, {"frame_max", tLong, false}, {"heartbeat", tShort, false}}
	def(10, 30, "ConnectionTune", s, tune, 31)
	def(10, 31, "ConnectionTuneOk", c, tune)
	def(10, 40, "ConnectionOpen", c, []arg{{"virtual_host", tShortStr, false}, {"", tShortStr, false}, {"", tBit, false}}, 41)
	def(10, 41, "ConnectionOpenOk", s, []arg{{"", tShortStr, false}})
	def(10, 50, "ConnectionClose", b, closeArgs, 51)
	def(10, 51, "ConnectionCloseOk", b, nil)
	def(10, 60, "ConnectionBlocked", s, []arg{{"reason", tShortStr, false}})
	def(10, 61, "ConnectionUnblocked", s, nil)
	def(10, 70, "ConnectionUpdateSecret", c, []arg{{"new_secret", tLongStr, true}, {"reason", tShortStr, false}}, 71)
	def(10, 71, "ConnectionUpdateSecretOk", s, nil)
	// channel (20)
	def(20, 10, "ChannelOpen", c, []arg{{"", tShortStr, false}}, 11)
	def(20, 11, "ChannelOpenOk", s, []arg{{"", tLongStr, false}})
	def(20, 20, "ChannelFlow", b, []arg{{"active", tBit, false}}, 21)
	def(20, 21, "ChannelFlowOk", b, []arg{{"active", tBit, false}})
	def(20, 40, "ChannelClose", b, closeArgs, 41)
	def(20, 41, "ChannelCloseOk", b, nil)
	// exchange (40)
	def(40, 10, "ExchangeDeclare", c, []arg{{"", tShort, false}, {"exchange", tShortStr, false}, {"type", tShortStr, false},
		{"passive", tBit, false}, {"durable", tBit, false}, {"auto_delete", tBit, false}, {"internal", tBit, false},
		{"no_wait", tBit, false}, {"arguments", tTable, false}}, 11)
	def(40, 11, "ExchangeDeclareOk", s, nil)
	def(40, 20, "ExchangeDelete", c, []arg{{"", tShort, false}, {"exchange", tShortStr, false}, {"if_unused", tBit, false},
		{"no_wait", tBit, false}}, 21)
	def(40, 21, "ExchangeDeleteOk", s, nil)
	def(40, 30, "ExchangeBind", c, bindArgs, 31)
	def(40, 31, "ExchangeBindOk", s, nil)
	def(40, 40, "ExchangeUnbind", c, bindArgs, 51)
	def(40, 51, "ExchangeUnbindOk", s, nil)
	// queue (50)
	def(50, 10, "QueueDeclare", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"passive", tBit, false},
		{"durable", tBit, false}, {"exclusive", tBit, false}, {"auto_delete", tBit, false}, {"no_wait", tBit, false},
		{"arguments", tTable, false}}, 11)
	def(50, 11, "QueueDeclareOk", s, []arg{{"queue", tShortStr, false}, {"message_count", tLong, false}, {"consumer_count", tLong, false}})
	def(50, 20, "QueueBind", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"exchange", tShortStr, false},
		{"routing_key", tShortStr, false}, {"no_wait", tBit, false}, {"arguments", tTable, false}}, 21)
	def(50, 21, "QueueBindOk", s, nil)
	def(50, 30, "QueuePurge", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"no_wait", tBit, false}}, 31)
	def(50, 31, "QueuePurgeOk", s, []arg{{"message_count", tLong, false}})
	def(50, 40, "QueueDelete", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"if_unused", tBit, false},
		{"if_empty", tBit, false}, {"no_wait", tBit, false}}, 41)
	def(50, 41, "QueueDeleteOk", s, []arg{{"message_count", tLong, false}})
	def(50, 50, "QueueUnbind", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"exchange", tShortStr, false},
		{"routing_key", tShortStr, false}, {"arguments", tTable, false}}, 51)
	def(50, 51, "QueueUnbindOk", s, nil)
	// basic (60)
	def(60, 10, "BasicQos", c, []arg{{"prefetch_size", tLong, false}, {"prefetch_count", tShort, false}, {"global", tBit, false}}, 11)
	def(60, 11, "BasicQosOk", s, nil)
	def(60, 20, "BasicConsume", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"consumer_tag", tShortStr, false},
		{"no_local", tBit, false}, {"no_ack", tBit, false}, {"exclusive", tBit, false}, {"no_wait", tBit, false},
		{"arguments", tTable, false}}, 21)
	def(60, 21, "BasicConsumeOk", s, []arg{{"consumer_tag", tShortStr, false}})
	// The server cancels a consumer whose queue went away (RabbitMQ's
	// consumer_cancel_notify), so either side sends a cancel.
	def(60, 30, "BasicCancel", b, []arg{{"consumer_tag", tShortStr, false}, {"no_wait", tBit, false}}, 31)
	def(60, 31, "BasicCancelOk", b, []arg{{"consumer_tag", tShortStr, false}})
	def(60, 40, "BasicPublish", c, []arg{{"", tShort, false}, {"exchange", tShortStr, false}, {"routing_key", tShortStr, false},
		{"mandatory", tBit, false}, {"immediate", tBit, false}}).content = true
	def(60, 50, "BasicReturn", s, []arg{{"reply_code", tShort, false}, {"reply_text", tShortStr, false},
		{"exchange", tShortStr, false}, {"routing_key", tShortStr, false}}).content = true
	def(60, 60, "BasicDeliver", s, []arg{{"consumer_tag", tShortStr, false}, {"delivery_tag", tLongLong, false},
		{"redelivered", tBit, false}, {"exchange", tShortStr, false}, {"routing_key", tShortStr, false}}).content = true
	def(60, 70, "BasicGet", c, []arg{{"", tShort, false}, {"queue", tShortStr, false}, {"no_ack", tBit, false}}, 71, 72)
	def(60, 71, "BasicGetOk", s, []arg{{"delivery_tag", tLongLong, false}, {"redelivered", tBit, false},
		{"exchange", tShortStr, false}, {"routing_key", tShortStr, false}, {"message_count", tLong, false}}).content = true
	def(60, 72, "BasicGetEmpty", s, []arg{{"", tShortStr, false}})
	// Acks and nacks go both ways: a consumer's, and the server's
	// publisher confirms.
	def(60, 80, "BasicAck", b, []arg{{"delivery_tag", tLongLong, false}, {"multiple", tBit, false}})
	def(60, 90, "BasicReject", c, []arg{{"delivery_tag", tLongLong, false}, {"requeue", tBit, false}})
	def(60, 100, "BasicRecoverAsync", c, []arg{{"requeue", tBit, false}})
	def(60, 110, "BasicRecover", c, []arg{{"requeue", tBit, false}}, 111)
	def(60, 111, "BasicRecoverOk", s, nil)
	def(60, 120, "BasicNack", b, []arg{{"delivery_tag", tLongLong, false}, {"multiple", tBit, false}, {"requeue", tBit, false}})
	// confirm (85)
	def(85, 10, "ConfirmSelect", c, []arg{{"no_wait", tBit, false}}, 11)
	def(85, 11, "ConfirmSelectOk", s, nil)
	// tx (90)
	def(90, 10, "TxSelect", c, nil, 11)
	def(90, 11, "TxSelectOk", s, nil)
	def(90, 20, "TxCommit", c, nil, 21)
	def(90, 21, "TxCommitOk", s, nil)
	def(90, 30, "TxRollback", c, nil, 31)
	def(90, 31, "TxRollbackOk", s, nil)
}

// isClose reports whether a method closes a channel or the connection:
// besides asking for its close-ok, it answers (as an error) what the
// other side was waiting for.
func isClose(class, id uint16) bool {
	return (class == 10 && id == 50) || (class == 20 && id == 40)
}
