package diagnose

// OpNames lets the external tests check that every op has a name in a sentence.
var OpNames = opNames
