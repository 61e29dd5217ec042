package promreporter

import (
	"time"

	"github.com/flinkscale/flinkscale/test/sim"
)

// The fixture reproduces the job of the reference's example lines
// (shared/reference/flink-rest-and-metrics.md §3): job orders_agg, a Kafka
// source chained with a map, and a window chained with a sink.
const (
	fxJobID    = "3f2a9c1e8b7d4f60a1b2c3d4e5f60718"
	fxSourceID = "cbc357ccb763df2852fee8c4fc7d55f2"
	fxWindowID = "90bea66de1c231edf33913ecd54406c1"
	fxTM1      = "orders-agg-taskmanager-1-1"
	fxTM2      = "orders-agg-taskmanager-1-2"
)

func ptr(f float64) *float64 { return &f }

func fixture() sim.View {
	now := time.Date(2026, 4, 13, 12, 0, 0, 0, time.UTC)
	running := now.Add(-90 * time.Minute).UnixMilli()
	return sim.View{
		Now:            now,
		FlinkVersion:   "1.20",
		Scheduler:      "adaptive",
		JobManagerHost: "orders-agg-jobmanager",
		TaskManagers: []sim.TaskManagerView{
			{ID: fxTM1, Host: "10.244.1.17", SlotsNumber: 2, FreeSlots: 0, CPUCores: 2, FreeMemory: 536870912, PhysicalMemory: 8 << 30},
			{ID: fxTM2, Host: "10.244.2.9", SlotsNumber: 2, FreeSlots: 1, CPUCores: 2, FreeMemory: 536870912, PhysicalMemory: 8 << 30},
		},
		Job: sim.JobView{
			ID:          fxJobID,
			Name:        "orders-agg",
			State:       "RUNNING",
			Timestamps:  map[string]int64{"INITIALIZING": running - 2000, "CREATED": running - 1500, "RUNNING": running},
			StartTime:   running - 2000,
			EndTime:     -1,
			NumRestarts: 2,
			NumRescales: 1,
			Checkpoints: sim.CheckpointsView{
				Total: 44, InProgress: 1, Completed: 42, Failed: 1,
				LatestCompleted: &sim.CheckpointStat{ID: 43, Status: "COMPLETED", EndToEndDurationMs: 1834, StateSizeBytes: 73400320, CheckpointedSize: 52428800},
				LatestRestored:  &sim.RestoredCheckpoint{ID: 7, RestoreTimestamp: running - 100},
			},
			Vertices: []sim.VertexView{
				{
					ID: fxSourceID, Name: "Source: Kafka Source -> Map", OperatorName: "Source: Kafka Source",
					Parallelism: 2, Status: "RUNNING", IsSource: true,
					Subtasks: []sim.SubtaskView{
						{
							Index: 0, TaskManagerID: fxTM1, Host: "10.244.1.17",
							BusyTimeMsPerSecond: 188, IdleTimeMsPerSecond: 400,
							SoftBackPressuredTimeMsPerSecond: 300, HardBackPressuredTimeMsPerSecond: 112, BackPressuredTimeMsPerSecond: 412,
							AccumulatedBusyTimeMs: 1015200, AccumulatedIdleTimeMs: 2160000, AccumulatedBackPressuredMs: 2224800,
							NumRecordsIn: 0, NumRecordsOut: 12345678, NumRecordsInPerSecond: 0, NumRecordsOutPerSecond: 15234.55,
							SourceNumRecordsIn: 12345678, SourceNumRecordsOut: 12345678,
							SourceNumRecordsInPerSecond: 15234.55, SourceNumRecordsOutPerSecond: 15234.55,
							PendingRecords: ptr(48210),
							Partitions: []sim.PartitionView{
								{Topic: "orders.v1", Partition: 3, CurrentOffset: 45231007, CommittedOffset: 45100000},
								{Topic: "orders.v1", Partition: 1, CurrentOffset: 1000, CommittedOffset: -1},
							},
						},
						{
							Index: 1, TaskManagerID: fxTM2, Host: "10.244.2.9",
							BusyTimeMsPerSecond: 500, IdleTimeMsPerSecond: 500,
							NumRecordsOut: 100, NumRecordsOutPerSecond: 1.5,
							SourceNumRecordsIn: 100, SourceNumRecordsOut: 100,
							SourceNumRecordsInPerSecond: 1.5, SourceNumRecordsOutPerSecond: 1.5,
							PendingRecords: nil, // not registered yet
							Partitions: []sim.PartitionView{
								{Topic: "orders.v1", Partition: 0, CurrentOffset: -1, CommittedOffset: -1},
							},
						},
					},
				},
				{
					ID: fxWindowID, Name: "Window(TumblingEventTimeWindows(60000)) -> Sink: Print",
					OperatorName: "Window(TumblingEventTimeWindows(60000))",
					Parallelism:  2, Status: "RUNNING",
					Inputs: []sim.EdgeView{{ID: fxSourceID, Ship: "HASH"}},
					Subtasks: []sim.SubtaskView{
						{
							Index: 0, TaskManagerID: fxTM2, Host: "10.244.2.9",
							BusyTimeMsPerSecond: 0.001, IdleTimeMsPerSecond: 999,
							NumRecordsIn: 7, NumRecordsInPerSecond: 0.0001,
						},
						{
							Index: 1, TaskManagerID: fxTM1, Host: "10.244.1.17",
							BusyTimeMsPerSecond: 734, IdleTimeMsPerSecond: 266,
							AccumulatedBusyTimeMs: 3963600, AccumulatedIdleTimeMs: 1436400,
							NumRecordsIn: 12345678, NumRecordsOut: 12345678,
							NumRecordsInPerSecond: 15234.55, NumRecordsOutPerSecond: 15234.55,
						},
					},
				},
			},
		},
	}
}
