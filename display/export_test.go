package display

// StartFanout runs f until the returned stop (start), for the tests of the
// Fanout over real drivers, which import the drivers and so live outside
// the package.
var StartFanout = start
