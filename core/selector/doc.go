// Package selector compiles and evaluates JMS message selectors, the SQL-92
// subset of JMS 1.1 §3.8 as ActiveMQ accepts it, for the destination core to
// filter what a subscription receives: comparisons, AND/OR/NOT in
// three-valued logic, LIKE [ESCAPE], IN, BETWEEN, IS [NOT] NULL and
// arithmetic (+ - * / %).
//
// STOMP and MQTT carry every header as a string, so a string facing a number
// is read as a number when it is written as one (as ActiveMQ's
// convertStringExpressions does), and a string facing a boolean is read as
// 'true' or 'false'; otherwise the comparison is UNKNOWN, never a panic.
// Unlike ActiveMQ, + never concatenates strings: '150' + 1 is 151.
//
// Selectors come from clients, so Parse bounds what they can cost: at most
// 4096 bytes, nesting at most 100 deep (chains of AND, OR and arithmetic
// cost no nesting), LIKE patterns compiled once into a matcher that falls
// back to a linear-time automaton when a pattern is built to backtrack, and
// IN lists held in a map.
//
// It imports nothing of hamq, so that any layer may use it.
package selector
