// Package queue implements a bounded work queue.
package queue

import (
	"errors"
	"sync"
)

// ErrFull is returned when the queue is at capacity.
var ErrFull = errors.New("queue full")

// Queue is a bounded FIFO safe for concurrent use.
type Queue struct {
	mu    sync.Mutex
	items []string
	limit int
}

// New returns an empty queue holding at most limit items.
func New(limit int) *Queue {
	return &Queue{limit: limit}
}

// Push appends an item, or fails when the queue is full.
func (q *Queue) Push(item string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.limit {
		return ErrFull
	}
	q.items = append(q.items, item)
	return nil
}

// Pop removes the oldest item.
func (q *Queue) Pop() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return "", false
	}
	item := q.items[0]
	q.items = q.items[1:]
	return item, true
}
