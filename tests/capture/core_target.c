// SPDX-License-Identifier: MIT
/*
 * The process tests/capture/test_core.py saves and hands to gdb: a known
 * global string, a heap object whose address it prints, and a known stack
 * (main -> level1 -> level2 -> level3) stopped in sleep(3).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char global[] = "snapfs-core-global-5e1f0c";
char *heap_ptr;

__attribute__((noinline)) static void level3(int depth)
{
	printf("%p %d\n", (void *)heap_ptr, depth);
	fflush(stdout);
	for (;;)
		sleep(1000);
}

__attribute__((noinline)) static void level2(int depth)
{
	level3(depth + 1);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void level1(int depth)
{
	level2(depth + 1);
	__asm__ volatile("" ::: "memory");
}

int main(void)
{
	heap_ptr = malloc(100);
	if (!heap_ptr)
		return 1;
	strcpy(heap_ptr, "snapfs-core-heap-9d27a4");
	level1(1);
	return 0;
}
