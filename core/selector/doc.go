// Package selector parses and evaluates JMS message selectors (the SQL-92
// subset of the JMS specification, as ActiveMQ accepts them): comparisons,
// AND/OR/NOT with three-valued logic, LIKE, IN, BETWEEN, IS [NOT] NULL and
// arithmetic.
//
// STOMP and MQTT carry every header as a string, so a string compared with a
// number is read as a number when it parses as one (ActiveMQ's
// convertStringExpressions); otherwise the comparison is unknown.
//
// It imports nothing of hamq.
package selector
