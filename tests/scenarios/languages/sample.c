#include <stdio.h>
#include <stdlib.h>

#define MAX_NAME 64

struct point {
    int x;
    int y;
};

enum color { RED, GREEN, BLUE };

static int clamp(int value, int lo, int hi) {
    if (value < lo) {
        return lo;
    }
    if (value > hi) {
        return hi;
    }
    return value;
}

struct point *point_new(int x, int y) {
    struct point *p = malloc(sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->x = clamp(x, 0, 100);
    p->y = clamp(y, 0, 100);
    return p;
}

int main(void) {
    struct point *p = point_new(3, 4);
    printf("%d %d\n", p->x, p->y);
    free(p);
    return 0;
}
