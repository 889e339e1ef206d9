package com.example.cache

import java.time.Duration

data class Entry(val key: String, val value: String)

interface Store {
    fun get(key: String): Entry?
}

class LruCache(private val capacity: Int) : Store {
    private val map = LinkedHashMap<String, Entry>(capacity, 0.75f, true)

    override fun get(key: String): Entry? {
        return map[key]
    }

    fun put(entry: Entry) {
        map[entry.key] = entry
        if (map.size > capacity) {
            map.remove(map.keys.first())
        }
    }
}

object Defaults {
    val ttl: Duration = Duration.ofMinutes(5)
}

fun describe(cache: LruCache): String = "cache of ${cache}"
