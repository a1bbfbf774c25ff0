module github.com/hamq/hamq

go 1.26.8

require (
	github.com/go-stomp/stomp/v3 v3.1.3
	github.com/syndtr/goleveldb v1.0.1-0.20220721030215-126854af5e6d
	gopkg.in/yaml.v3 v3.0.1
)

require github.com/golang/snappy v0.0.4 // indirect
