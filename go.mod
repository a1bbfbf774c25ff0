module github.com/hamq/hamq

go 1.26.8

require (
	github.com/Azure/go-amqp v1.7.0
	github.com/coder/websocket v1.8.15
	github.com/eclipse/paho.mqtt.golang v1.5.1
	github.com/go-stomp/stomp/v3 v3.1.3
	github.com/go-zookeeper/zk v1.0.4
	github.com/mochi-mqtt/server/v2 v2.7.9
	github.com/syndtr/goleveldb v1.0.1-0.20220721030215-126854af5e6d
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/golang/snappy v0.0.4 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/rs/xid v1.4.0 // indirect
	golang.org/x/net v0.44.0 // indirect
	golang.org/x/sync v0.17.0 // indirect
)
