package main

import "syscall"

// syscallZero is the null signal: sending it checks that a process exists.
const syscallZero = syscall.Signal(0)
