package example.stats

import scala.collection.mutable

trait Metric {
  def name: String
}

case class Counter(name: String) extends Metric {
  private var value = 0L

  def inc(by: Long = 1): Unit = {
    value += by
  }

  def get: Long = value
}

object Registry {
  private val metrics = mutable.Map.empty[String, Metric]

  def register(m: Metric): Unit = {
    metrics(m.name) = m
  }
}

def summary(c: Counter): String = s"${c.name}=${c.get}"
